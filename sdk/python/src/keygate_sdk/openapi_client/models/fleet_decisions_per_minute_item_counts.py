from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="FleetDecisionsPerMinuteItemCounts")


@_attrs_define
class FleetDecisionsPerMinuteItemCounts:
    """
    Attributes:
        field_401 (int):
        field_403 (int):
        field_429 (int):
        field_503 (int):
        allowed (int):
        other (int):
    """

    field_401: int
    field_403: int
    field_429: int
    field_503: int
    allowed: int
    other: int

    def to_dict(self) -> dict[str, Any]:
        field_401 = self.field_401

        field_403 = self.field_403

        field_429 = self.field_429

        field_503 = self.field_503

        allowed = self.allowed

        other = self.other

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "401": field_401,
                "403": field_403,
                "429": field_429,
                "503": field_503,
                "allowed": allowed,
                "other": other,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        field_401 = d.pop("401")

        field_403 = d.pop("403")

        field_429 = d.pop("429")

        field_503 = d.pop("503")

        allowed = d.pop("allowed")

        other = d.pop("other")

        fleet_decisions_per_minute_item_counts = cls(
            field_401=field_401,
            field_403=field_403,
            field_429=field_429,
            field_503=field_503,
            allowed=allowed,
            other=other,
        )

        return fleet_decisions_per_minute_item_counts
