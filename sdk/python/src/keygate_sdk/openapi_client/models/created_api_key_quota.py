from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="CreatedApiKeyQuota")


@_attrs_define
class CreatedApiKeyQuota:
    """Monthly quotas (calendar month, UTC); null = none of the key's own (the plan's maximum still caps the tenant). A
    key's requests and session minutes also count against every monthly quota of the keys that created it (its creator
    chain, with the quotas they held when it was made), so minting, using and revoking children cannot create quota

        Attributes:
            requests_per_month (int | None):
            session_minutes_per_month (int | None):
    """

    requests_per_month: int | None
    session_minutes_per_month: int | None

    def to_dict(self) -> dict[str, Any]:
        requests_per_month: int | None
        requests_per_month = self.requests_per_month

        session_minutes_per_month: int | None
        session_minutes_per_month = self.session_minutes_per_month

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "requestsPerMonth": requests_per_month,
                "sessionMinutesPerMonth": session_minutes_per_month,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_requests_per_month(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        requests_per_month = _parse_requests_per_month(d.pop("requestsPerMonth"))

        def _parse_session_minutes_per_month(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        session_minutes_per_month = _parse_session_minutes_per_month(d.pop("sessionMinutesPerMonth"))

        created_api_key_quota = cls(
            requests_per_month=requests_per_month,
            session_minutes_per_month=session_minutes_per_month,
        )

        return created_api_key_quota
