from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from dateutil.parser import isoparse

T = TypeVar("T", bound="FleetBlockedAddressesItem")


@_attrs_define
class FleetBlockedAddressesItem:
    """
    Attributes:
        ip (str):
        blocked_at (datetime.datetime):
        blocked_until (datetime.datetime):
    """

    ip: str
    blocked_at: datetime.datetime
    blocked_until: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        ip = self.ip

        blocked_at = self.blocked_at.isoformat()

        blocked_until = self.blocked_until.isoformat()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "ip": ip,
                "blockedAt": blocked_at,
                "blockedUntil": blocked_until,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        ip = d.pop("ip")

        blocked_at = isoparse(d.pop("blockedAt"))

        blocked_until = isoparse(d.pop("blockedUntil"))

        fleet_blocked_addresses_item = cls(
            ip=ip,
            blocked_at=blocked_at,
            blocked_until=blocked_until,
        )

        return fleet_blocked_addresses_item
