from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.operator_role import OperatorRole, check_operator_role

T = TypeVar("T", bound="Operator")


@_attrs_define
class Operator:
    """
    Attributes:
        name (str): `admin` for admin.token, else the operator name from admin.tokens
        role (OperatorRole):
    """

    name: str
    role: OperatorRole

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        role: str = self.role

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "role": role,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        role = check_operator_role(d.pop("role"))

        operator = cls(
            name=name,
            role=role,
        )

        return operator
