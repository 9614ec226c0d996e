from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.usage_row_refusals import UsageRowRefusals


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
        refusals (UsageRowRefusals | Unset): The tenant's refused requests in the period by error code (`rate_limited`,
            `quota_exceeded`, `key_disabled`…; nonzero codes only). On a tenant's rows only: a key's rows (`keyId`) have
            none
    """

    period: str
    requests: int
    allowed: int
    denied: int
    rate_limited: int
    sessions: int
    session_seconds: float
    refusals: UsageRowRefusals | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        period = self.period

        requests = self.requests

        allowed = self.allowed

        denied = self.denied

        rate_limited = self.rate_limited

        sessions = self.sessions

        session_seconds = self.session_seconds

        refusals: dict[str, Any] | Unset = UNSET
        if not isinstance(self.refusals, Unset):
            refusals = self.refusals.to_dict()

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
        if refusals is not UNSET:
            field_dict["refusals"] = refusals

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.usage_row_refusals import UsageRowRefusals

        d = dict(src_dict)
        period = d.pop("period")

        requests = d.pop("requests")

        allowed = d.pop("allowed")

        denied = d.pop("denied")

        rate_limited = d.pop("rateLimited")

        sessions = d.pop("sessions")

        session_seconds = d.pop("sessionSeconds")

        _refusals = d.pop("refusals", UNSET)
        refusals: UsageRowRefusals | Unset
        if isinstance(_refusals, Unset):
            refusals = UNSET
        else:
            refusals = UsageRowRefusals.from_dict(_refusals)

        usage_row = cls(
            period=period,
            requests=requests,
            allowed=allowed,
            denied=denied,
            rate_limited=rate_limited,
            sessions=sessions,
            session_seconds=session_seconds,
            refusals=refusals,
        )

        return usage_row
