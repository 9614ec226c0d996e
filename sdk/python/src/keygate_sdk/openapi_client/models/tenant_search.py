from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.tenant_search_data_item import TenantSearchDataItem


T = TypeVar("T", bound="TenantSearch")


@_attrs_define
class TenantSearch:
    """
    Attributes:
        data (list[TenantSearchDataItem]):
        scanned (int): Tenants read
        truncated (bool): The search stopped after 20,000 tenants without filling `limit`
    """

    data: list[TenantSearchDataItem]
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
        from ..models.tenant_search_data_item import TenantSearchDataItem

        d = dict(src_dict)
        data = []
        _data = d.pop("data")
        for data_item_data in _data:
            data_item = TenantSearchDataItem.from_dict(data_item_data)

            data.append(data_item)

        scanned = d.pop("scanned")

        truncated = d.pop("truncated")

        tenant_search = cls(
            data=data,
            scanned=scanned,
            truncated=truncated,
        )

        return tenant_search
