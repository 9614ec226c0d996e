from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="UsageRow")


@_attrs_define
class UsageRow:
    """
    Attributes:
        period (str): YYYY-MM-DDTHH (granularity hour, UTC), YYYY-MM-DD (day) or YYYY-MM (month)
        requests (int):
        allowed (int):
        denied (int):
        rate_limited (int):
        sessions (int): WebSocket sessions opened in the period
        session_seconds (float): Their time in the period, in seconds (millisecond precision); a session spanning an
            hour boundary is split
    """

    period: str
    requests: int
    allowed: int
    denied: int
    rate_limited: int
    sessions: int
    session_seconds: float

    def to_dict(self) -> dict[str, Any]:
        period = self.period

        requests = self.requests

        allowed = self.allowed

        denied = self.denied

        rate_limited = self.rate_limited

        sessions = self.sessions

        session_seconds = self.session_seconds

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "period": period,
                "requests": requests,
                "allowed": allowed,
                "denied": denied,
                "rateLimited": rate_limited,
                "sessions": sessions,
                "sessionSeconds": session_seconds,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        period = d.pop("period")

        requests = d.pop("requests")

        allowed = d.pop("allowed")

        denied = d.pop("denied")

        rate_limited = d.pop("rateLimited")

        sessions = d.pop("sessions")

        session_seconds = d.pop("sessionSeconds")

        usage_row = cls(
            period=period,
            requests=requests,
            allowed=allowed,
            denied=denied,
            rate_limited=rate_limited,
            sessions=sessions,
            session_seconds=session_seconds,
        )

        return usage_row
