from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="AdminCreateApiKeyBodyQuota")


@_attrs_define
class AdminCreateApiKeyBodyQuota:
    """
    Attributes:
        requests_per_month (int | None | Unset):
        session_minutes_per_month (int | None | Unset):
    """

    requests_per_month: int | Unset | None = UNSET
    session_minutes_per_month: int | Unset | None = UNSET

    def to_dict(self) -> dict[str, Any]:
        requests_per_month: int | Unset | None
        if isinstance(self.requests_per_month, Unset):
            requests_per_month = UNSET
        else:
            requests_per_month = self.requests_per_month

        session_minutes_per_month: int | Unset | None
        if isinstance(self.session_minutes_per_month, Unset):
            session_minutes_per_month = UNSET
        else:
            session_minutes_per_month = self.session_minutes_per_month

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if requests_per_month is not UNSET:
            field_dict["requestsPerMonth"] = requests_per_month
        if session_minutes_per_month is not UNSET:
            field_dict["sessionMinutesPerMonth"] = session_minutes_per_month

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_requests_per_month(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        requests_per_month = _parse_requests_per_month(d.pop("requestsPerMonth", UNSET))

        def _parse_session_minutes_per_month(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        session_minutes_per_month = _parse_session_minutes_per_month(d.pop("sessionMinutesPerMonth", UNSET))

        admin_create_api_key_body_quota = cls(
            requests_per_month=requests_per_month,
            session_minutes_per_month=session_minutes_per_month,
        )

        return admin_create_api_key_body_quota
