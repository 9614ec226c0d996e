from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.keys_usage_data_item import KeysUsageDataItem


T = TypeVar("T", bound="KeysUsage")


@_attrs_define
class KeysUsage:
    """
    Attributes:
        data (list[KeysUsageDataItem]):
    """

    data: list[KeysUsageDataItem]

    def to_dict(self) -> dict[str, Any]:
        data = []
        for data_item_data in self.data:
            data_item = data_item_data.to_dict()
            data.append(data_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "data": data,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.keys_usage_data_item import KeysUsageDataItem

        d = dict(src_dict)
        data = []
        _data = d.pop("data")
        for data_item_data in _data:
            data_item = KeysUsageDataItem.from_dict(data_item_data)

            data.append(data_item)

        keys_usage = cls(
            data=data,
        )

        return keys_usage
