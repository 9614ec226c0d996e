from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from dateutil.parser import isoparse

from ..models.tenant_search_data_item_status import TenantSearchDataItemStatus, check_tenant_search_data_item_status

T = TypeVar("T", bound="TenantSearchDataItem")


@_attrs_define
class TenantSearchDataItem:
    """
    Attributes:
        id (str):
        name (str):
        plan (str):
        max_keys (int):
        status (TenantSearchDataItemStatus):
        created_at (datetime.datetime):
        updated_at (datetime.datetime):
        key_count (int):
    """

    id: str
    name: str
    plan: str
    max_keys: int
    status: TenantSearchDataItemStatus
    created_at: datetime.datetime
    updated_at: datetime.datetime
    key_count: int

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        name = self.name

        plan = self.plan

        max_keys = self.max_keys

        status: str = self.status

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

        key_count = self.key_count

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "name": name,
                "plan": plan,
                "maxKeys": max_keys,
                "status": status,
                "createdAt": created_at,
                "updatedAt": updated_at,
                "keyCount": key_count,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        name = d.pop("name")

        plan = d.pop("plan")

        max_keys = d.pop("maxKeys")

        status = check_tenant_search_data_item_status(d.pop("status"))

        created_at = isoparse(d.pop("createdAt"))

        updated_at = isoparse(d.pop("updatedAt"))

        key_count = d.pop("keyCount")

        tenant_search_data_item = cls(
            id=id,
            name=name,
            plan=plan,
            max_keys=max_keys,
            status=status,
            created_at=created_at,
            updated_at=updated_at,
            key_count=key_count,
        )

        return tenant_search_data_item
