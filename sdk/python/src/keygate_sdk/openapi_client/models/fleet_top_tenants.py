from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.fleet_top_tenants_data_item import FleetTopTenantsDataItem


T = TypeVar("T", bound="FleetTopTenants")


@_attrs_define
class FleetTopTenants:
    """Up to 10 tenants with the most requests today (UTC), from the stored usage counters

    Attributes:
        data (list[FleetTopTenantsDataItem]):
        scanned (int):
        truncated (bool): More than 10,000 tenants: the ranking covers the first 10,000
    """

    data: list[FleetTopTenantsDataItem]
    scanned: int
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        data = []
        for data_item_data in self.data:
            data_item = data_item_data.to_dict()
            data.append(data_item)

        scanned = self.scanned

        truncated = self.truncated

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "data": data,
                "scanned": scanned,
                "truncated": truncated,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.fleet_top_tenants_data_item import FleetTopTenantsDataItem

        d = dict(src_dict)
        data = []
        _data = d.pop("data")
        for data_item_data in _data:
            data_item = FleetTopTenantsDataItem.from_dict(data_item_data)

            data.append(data_item)

        scanned = d.pop("scanned")

        truncated = d.pop("truncated")

        fleet_top_tenants = cls(
            data=data,
            scanned=scanned,
            truncated=truncated,
        )

        return fleet_top_tenants
