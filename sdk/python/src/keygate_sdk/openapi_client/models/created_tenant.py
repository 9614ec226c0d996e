from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.created_api_key import CreatedApiKey
    from ..models.tenant import Tenant


T = TypeVar("T", bound="CreatedTenant")


@_attrs_define
class CreatedTenant:
    """
    Attributes:
        tenant (Tenant):
        api_key (CreatedApiKey):
    """

    tenant: Tenant
    api_key: CreatedApiKey

    def to_dict(self) -> dict[str, Any]:
        tenant = self.tenant.to_dict()

        api_key = self.api_key.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tenant": tenant,
                "apiKey": api_key,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.created_api_key import CreatedApiKey
        from ..models.tenant import Tenant

        d = dict(src_dict)
        tenant = Tenant.from_dict(d.pop("tenant"))

        api_key = CreatedApiKey.from_dict(d.pop("apiKey"))

        created_tenant = cls(
            tenant=tenant,
            api_key=api_key,
        )

        return created_tenant
