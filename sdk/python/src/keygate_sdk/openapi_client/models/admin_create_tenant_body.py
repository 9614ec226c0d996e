from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="AdminCreateTenantBody")


@_attrs_define
class AdminCreateTenantBody:
    """
    Attributes:
        name (str):
        plan (str | Unset):
        max_keys (int | Unset):
    """

    name: str
    plan: str | Unset = UNSET
    max_keys: int | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        plan = self.plan

        max_keys = self.max_keys

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
            }
        )
        if plan is not UNSET:
            field_dict["plan"] = plan
        if max_keys is not UNSET:
            field_dict["maxKeys"] = max_keys

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        plan = d.pop("plan", UNSET)

        max_keys = d.pop("maxKeys", UNSET)

        admin_create_tenant_body = cls(
            name=name,
            plan=plan,
            max_keys=max_keys,
        )

        return admin_create_tenant_body
