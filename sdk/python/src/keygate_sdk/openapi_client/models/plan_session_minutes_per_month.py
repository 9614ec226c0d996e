from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="PlanSessionMinutesPerMonth")


@_attrs_define
class PlanSessionMinutesPerMonth:
    """
    Attributes:
        default (int | None):
        max_ (int | None):
    """

    default: int | None
    max_: int | None

    def to_dict(self) -> dict[str, Any]:
        default: int | None
        default = self.default

        max_: int | None
        max_ = self.max_

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "default": default,
                "max": max_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_default(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        default = _parse_default(d.pop("default"))

        def _parse_max_(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        max_ = _parse_max_(d.pop("max"))

        plan_session_minutes_per_month = cls(
            default=default,
            max_=max_,
        )

        return plan_session_minutes_per_month
