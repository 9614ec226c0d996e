from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="Overview")


@_attrs_define
class Overview:
    """
    Attributes:
        tenants (int):
        keys (int):
        requests_today (int):
        sessions_today (int):
        session_seconds_today (float):
    """

    tenants: int
    keys: int
    requests_today: int
    sessions_today: int
    session_seconds_today: float

    def to_dict(self) -> dict[str, Any]:
        tenants = self.tenants

        keys = self.keys

        requests_today = self.requests_today

        sessions_today = self.sessions_today

        session_seconds_today = self.session_seconds_today

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tenants": tenants,
                "keys": keys,
                "requestsToday": requests_today,
                "sessionsToday": sessions_today,
                "sessionSecondsToday": session_seconds_today,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        tenants = d.pop("tenants")

        keys = d.pop("keys")

        requests_today = d.pop("requestsToday")

        sessions_today = d.pop("sessionsToday")

        session_seconds_today = d.pop("sessionSecondsToday")

        overview = cls(
            tenants=tenants,
            keys=keys,
            requests_today=requests_today,
            sessions_today=sessions_today,
            session_seconds_today=session_seconds_today,
        )

        return overview
