from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.admin_update_tenant_body_status import AdminUpdateTenantBodyStatus, check_admin_update_tenant_body_status
from ..types import UNSET, Unset

T = TypeVar("T", bound="AdminUpdateTenantBody")


@_attrs_define
class AdminUpdateTenantBody:
    """
    Attributes:
        name (str | Unset):
        plan (str | Unset):
        max_keys (int | Unset):
        status (AdminUpdateTenantBodyStatus | Unset):
    """

    name: str | Unset = UNSET
    plan: str | Unset = UNSET
    max_keys: int | Unset = UNSET
    status: AdminUpdateTenantBodyStatus | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        plan = self.plan

        max_keys = self.max_keys

        status: str | Unset = UNSET
        if not isinstance(self.status, Unset):
            status = self.status

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if name is not UNSET:
            field_dict["name"] = name
        if plan is not UNSET:
            field_dict["plan"] = plan
        if max_keys is not UNSET:
            field_dict["maxKeys"] = max_keys
        if status is not UNSET:
            field_dict["status"] = status

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name", UNSET)

        plan = d.pop("plan", UNSET)

        max_keys = d.pop("maxKeys", UNSET)

        _status = d.pop("status", UNSET)
        status: AdminUpdateTenantBodyStatus | Unset
        if isinstance(_status, Unset):
            status = UNSET
        else:
            status = check_admin_update_tenant_body_status(_status)

        admin_update_tenant_body = cls(
            name=name,
            plan=plan,
            max_keys=max_keys,
            status=status,
        )

        return admin_update_tenant_body
