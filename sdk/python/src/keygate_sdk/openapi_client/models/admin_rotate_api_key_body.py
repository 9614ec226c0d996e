from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="AdminRotateApiKeyBody")


@_attrs_define
class AdminRotateApiKeyBody:
    """
    Attributes:
        grace_period_seconds (int | Unset):  Default: 0.
    """

    grace_period_seconds: int | Unset = 0

    def to_dict(self) -> dict[str, Any]:
        grace_period_seconds = self.grace_period_seconds

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if grace_period_seconds is not UNSET:
            field_dict["gracePeriodSeconds"] = grace_period_seconds

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        grace_period_seconds = d.pop("gracePeriodSeconds", UNSET)

        admin_rotate_api_key_body = cls(
            grace_period_seconds=grace_period_seconds,
        )

        return admin_rotate_api_key_body
