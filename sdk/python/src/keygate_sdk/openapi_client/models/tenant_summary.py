from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.plan import Plan
    from ..models.tenant import Tenant


T = TypeVar("T", bound="TenantSummary")


@_attrs_define
class TenantSummary:
    """
    Attributes:
        tenant (Tenant):
        plan (Plan):
        key_count (int):
    """

    tenant: Tenant
    plan: Plan
    key_count: int

    def to_dict(self) -> dict[str, Any]:
        tenant = self.tenant.to_dict()

        plan = self.plan.to_dict()

        key_count = self.key_count

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tenant": tenant,
                "plan": plan,
                "keyCount": key_count,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.plan import Plan
        from ..models.tenant import Tenant

        d = dict(src_dict)
        tenant = Tenant.from_dict(d.pop("tenant"))

        plan = Plan.from_dict(d.pop("plan"))

        key_count = d.pop("keyCount")

        tenant_summary = cls(
            tenant=tenant,
            plan=plan,
            key_count=key_count,
        )

        return tenant_summary
