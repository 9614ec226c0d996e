from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from dateutil.parser import isoparse

from ..models.tenant_status import TenantStatus, check_tenant_status

T = TypeVar("T", bound="Tenant")


@_attrs_define
class Tenant:
    """
    Attributes:
        id (str):
        name (str):
        plan (str):
        max_keys (int):
        status (TenantStatus):
        created_at (datetime.datetime):
        updated_at (datetime.datetime):
    """

    id: str
    name: str
    plan: str
    max_keys: int
    status: TenantStatus
    created_at: datetime.datetime
    updated_at: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        name = self.name

        plan = self.plan

        max_keys = self.max_keys

        status: str = self.status

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

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

        status = check_tenant_status(d.pop("status"))

        created_at = isoparse(d.pop("createdAt"))

        updated_at = isoparse(d.pop("updatedAt"))

        tenant = cls(
            id=id,
            name=name,
            plan=plan,
            max_keys=max_keys,
            status=status,
            created_at=created_at,
            updated_at=updated_at,
        )

        return tenant
