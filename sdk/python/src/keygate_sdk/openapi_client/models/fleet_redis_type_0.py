from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.fleet_redis_type_0_status import FleetRedisType0Status, check_fleet_redis_type_0_status

T = TypeVar("T", bound="FleetRedisType0")


@_attrs_define
class FleetRedisType0:
    """
    Attributes:
        status (FleetRedisType0Status):
        latency_ms (float | None):
    """

    status: FleetRedisType0Status
    latency_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        status: str = self.status

        latency_ms: float | None
        latency_ms = self.latency_ms

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "status": status,
                "latencyMs": latency_ms,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        status = check_fleet_redis_type_0_status(d.pop("status"))

        def _parse_latency_ms(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        latency_ms = _parse_latency_ms(d.pop("latencyMs"))

        fleet_redis_type_0 = cls(
            status=status,
            latency_ms=latency_ms,
        )

        return fleet_redis_type_0
