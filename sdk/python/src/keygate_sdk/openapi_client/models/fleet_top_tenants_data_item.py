from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="FleetTopTenantsDataItem")


@_attrs_define
class FleetTopTenantsDataItem:
    """
    Attributes:
        id (str):
        name (str):
        plan (str):
        status (str):
        requests_today (int):
    """

    id: str
    name: str
    plan: str
    status: str
    requests_today: int

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        name = self.name

        plan = self.plan

        status = self.status

        requests_today = self.requests_today

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "name": name,
                "plan": plan,
                "status": status,
                "requestsToday": requests_today,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        name = d.pop("name")

        plan = d.pop("plan")

        status = d.pop("status")

        requests_today = d.pop("requestsToday")

        fleet_top_tenants_data_item = cls(
            id=id,
            name=name,
            plan=plan,
            status=status,
            requests_today=requests_today,
        )

        return fleet_top_tenants_data_item
