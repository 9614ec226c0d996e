from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="AdminUpdateApiKeyBodyRateLimit")


@_attrs_define
class AdminUpdateApiKeyBodyRateLimit:
    """
    Attributes:
        requests_per_minute (int | None | Unset):
        requests_per_day (int | None | Unset):
    """

    requests_per_minute: int | Unset | None = UNSET
    requests_per_day: int | Unset | None = UNSET

    def to_dict(self) -> dict[str, Any]:
        requests_per_minute: int | Unset | None
        if isinstance(self.requests_per_minute, Unset):
            requests_per_minute = UNSET
        else:
            requests_per_minute = self.requests_per_minute

        requests_per_day: int | Unset | None
        if isinstance(self.requests_per_day, Unset):
            requests_per_day = UNSET
        else:
            requests_per_day = self.requests_per_day

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if requests_per_minute is not UNSET:
            field_dict["requestsPerMinute"] = requests_per_minute
        if requests_per_day is not UNSET:
            field_dict["requestsPerDay"] = requests_per_day

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_requests_per_minute(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        requests_per_minute = _parse_requests_per_minute(d.pop("requestsPerMinute", UNSET))

        def _parse_requests_per_day(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        requests_per_day = _parse_requests_per_day(d.pop("requestsPerDay", UNSET))

        admin_update_api_key_body_rate_limit = cls(
            requests_per_minute=requests_per_minute,
            requests_per_day=requests_per_day,
        )

        return admin_update_api_key_body_rate_limit
