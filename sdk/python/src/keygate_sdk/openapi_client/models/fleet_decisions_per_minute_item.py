from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from dateutil.parser import isoparse

if TYPE_CHECKING:
    from ..models.fleet_decisions_per_minute_item_counts import FleetDecisionsPerMinuteItemCounts


T = TypeVar("T", bound="FleetDecisionsPerMinuteItem")


@_attrs_define
class FleetDecisionsPerMinuteItem:
    """
    Attributes:
        at (datetime.datetime):
        counts (FleetDecisionsPerMinuteItemCounts):
    """

    at: datetime.datetime
    counts: FleetDecisionsPerMinuteItemCounts

    def to_dict(self) -> dict[str, Any]:
        at = self.at.isoformat()

        counts = self.counts.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "at": at,
                "counts": counts,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.fleet_decisions_per_minute_item_counts import FleetDecisionsPerMinuteItemCounts

        d = dict(src_dict)
        at = isoparse(d.pop("at"))

        counts = FleetDecisionsPerMinuteItemCounts.from_dict(d.pop("counts"))

        fleet_decisions_per_minute_item = cls(
            at=at,
            counts=counts,
        )

        return fleet_decisions_per_minute_item
