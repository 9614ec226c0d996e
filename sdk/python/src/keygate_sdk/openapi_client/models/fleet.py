from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from dateutil.parser import isoparse

from ..models.fleet_store import FleetStore, check_fleet_store

if TYPE_CHECKING:
    from ..models.fleet_blocked_addresses_item import FleetBlockedAddressesItem
    from ..models.fleet_decisions_per_minute_item import FleetDecisionsPerMinuteItem
    from ..models.fleet_redis_type_0 import FleetRedisType0
    from ..models.fleet_top_tenants import FleetTopTenants
    from ..models.fleet_webhooks import FleetWebhooks


T = TypeVar("T", bound="Fleet")


@_attrs_define
class Fleet:
    """
    Attributes:
        generated_at (datetime.datetime):
        store (FleetStore):
        redis (FleetRedisType0 | None): The readiness check's view of the store
        decisions_per_minute (list[FleetDecisionsPerMinuteItem]): This process's decisions per minute over the last 3
            hours (oldest first), by status: allowed, 401, 403, 429, 503, other
        top_tenants (FleetTopTenants): Up to 10 tenants with the most requests today (UTC), from the stored usage
            counters
        blocked_addresses (list[FleetBlockedAddressesItem]): Addresses this process blocked for failed authentication
            whose block has not ended (at most 100, newest first)
        webhooks (FleetWebhooks):
    """

    generated_at: datetime.datetime
    store: FleetStore
    redis: FleetRedisType0 | None
    decisions_per_minute: list[FleetDecisionsPerMinuteItem]
    top_tenants: FleetTopTenants
    blocked_addresses: list[FleetBlockedAddressesItem]
    webhooks: FleetWebhooks

    def to_dict(self) -> dict[str, Any]:
        from ..models.fleet_redis_type_0 import FleetRedisType0

        generated_at = self.generated_at.isoformat()

        store: str = self.store

        redis: dict[str, Any] | None
        if isinstance(self.redis, FleetRedisType0):
            redis = self.redis.to_dict()
        else:
            redis = self.redis

        decisions_per_minute = []
        for decisions_per_minute_item_data in self.decisions_per_minute:
            decisions_per_minute_item = decisions_per_minute_item_data.to_dict()
            decisions_per_minute.append(decisions_per_minute_item)

        top_tenants = self.top_tenants.to_dict()

        blocked_addresses = []
        for blocked_addresses_item_data in self.blocked_addresses:
            blocked_addresses_item = blocked_addresses_item_data.to_dict()
            blocked_addresses.append(blocked_addresses_item)

        webhooks = self.webhooks.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "generatedAt": generated_at,
                "store": store,
                "redis": redis,
                "decisionsPerMinute": decisions_per_minute,
                "topTenants": top_tenants,
                "blockedAddresses": blocked_addresses,
                "webhooks": webhooks,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.fleet_blocked_addresses_item import FleetBlockedAddressesItem
        from ..models.fleet_decisions_per_minute_item import FleetDecisionsPerMinuteItem
        from ..models.fleet_redis_type_0 import FleetRedisType0
        from ..models.fleet_top_tenants import FleetTopTenants
        from ..models.fleet_webhooks import FleetWebhooks

        d = dict(src_dict)
        generated_at = isoparse(d.pop("generatedAt"))

        store = check_fleet_store(d.pop("store"))

        def _parse_redis(data: object) -> FleetRedisType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                redis_type_0 = FleetRedisType0.from_dict(data)

                return redis_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(FleetRedisType0 | None, data)

        redis = _parse_redis(d.pop("redis"))

        decisions_per_minute = []
        _decisions_per_minute = d.pop("decisionsPerMinute")
        for decisions_per_minute_item_data in _decisions_per_minute:
            decisions_per_minute_item = FleetDecisionsPerMinuteItem.from_dict(decisions_per_minute_item_data)

            decisions_per_minute.append(decisions_per_minute_item)

        top_tenants = FleetTopTenants.from_dict(d.pop("topTenants"))

        blocked_addresses = []
        _blocked_addresses = d.pop("blockedAddresses")
        for blocked_addresses_item_data in _blocked_addresses:
            blocked_addresses_item = FleetBlockedAddressesItem.from_dict(blocked_addresses_item_data)

            blocked_addresses.append(blocked_addresses_item)

        webhooks = FleetWebhooks.from_dict(d.pop("webhooks"))

        fleet = cls(
            generated_at=generated_at,
            store=store,
            redis=redis,
            decisions_per_minute=decisions_per_minute,
            top_tenants=top_tenants,
            blocked_addresses=blocked_addresses,
            webhooks=webhooks,
        )

        return fleet
