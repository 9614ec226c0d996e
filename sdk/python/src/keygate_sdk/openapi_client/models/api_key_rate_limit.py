from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="ApiKeyRateLimit")


@_attrs_define
class ApiKeyRateLimit:
    """
    Attributes:
        requests_per_minute (int | None):
        requests_per_day (int | None):
    """

    requests_per_minute: int | None
    requests_per_day: int | None

    def to_dict(self) -> dict[str, Any]:
        requests_per_minute: int | None
        requests_per_minute = self.requests_per_minute

        requests_per_day: int | None
        requests_per_day = self.requests_per_day

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "requestsPerMinute": requests_per_minute,
                "requestsPerDay": requests_per_day,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_requests_per_minute(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        requests_per_minute = _parse_requests_per_minute(d.pop("requestsPerMinute"))

        def _parse_requests_per_day(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        requests_per_day = _parse_requests_per_day(d.pop("requestsPerDay"))

        api_key_rate_limit = cls(
            requests_per_minute=requests_per_minute,
            requests_per_day=requests_per_day,
        )

        return api_key_rate_limit
