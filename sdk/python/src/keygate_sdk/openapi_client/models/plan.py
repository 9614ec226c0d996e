from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.plan_max_concurrent_connections import PlanMaxConcurrentConnections
    from ..models.plan_requests_per_day import PlanRequestsPerDay
    from ..models.plan_requests_per_minute import PlanRequestsPerMinute
    from ..models.plan_requests_per_month import PlanRequestsPerMonth
    from ..models.plan_session_minutes_per_month import PlanSessionMinutesPerMonth


T = TypeVar("T", bound="Plan")


@_attrs_define
class Plan:
    """
    Attributes:
        name (str):
        max_keys (int):
        requests_per_minute (PlanRequestsPerMinute):
        requests_per_day (PlanRequestsPerDay):
        max_concurrent_connections (PlanMaxConcurrentConnections):
        requests_per_month (PlanRequestsPerMonth):
        session_minutes_per_month (PlanSessionMinutesPerMonth):
        max_in_flight (int | None): Upstream requests the tenant may have in flight at once (null: no cap)
    """

    name: str
    max_keys: int
    requests_per_minute: PlanRequestsPerMinute
    requests_per_day: PlanRequestsPerDay
    max_concurrent_connections: PlanMaxConcurrentConnections
    requests_per_month: PlanRequestsPerMonth
    session_minutes_per_month: PlanSessionMinutesPerMonth
    max_in_flight: int | None

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        max_keys = self.max_keys

        requests_per_minute = self.requests_per_minute.to_dict()

        requests_per_day = self.requests_per_day.to_dict()

        max_concurrent_connections = self.max_concurrent_connections.to_dict()

        requests_per_month = self.requests_per_month.to_dict()

        session_minutes_per_month = self.session_minutes_per_month.to_dict()

        max_in_flight: int | None
        max_in_flight = self.max_in_flight

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "maxKeys": max_keys,
                "requestsPerMinute": requests_per_minute,
                "requestsPerDay": requests_per_day,
                "maxConcurrentConnections": max_concurrent_connections,
                "requestsPerMonth": requests_per_month,
                "sessionMinutesPerMonth": session_minutes_per_month,
                "maxInFlight": max_in_flight,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.plan_max_concurrent_connections import PlanMaxConcurrentConnections
        from ..models.plan_requests_per_day import PlanRequestsPerDay
        from ..models.plan_requests_per_minute import PlanRequestsPerMinute
        from ..models.plan_requests_per_month import PlanRequestsPerMonth
        from ..models.plan_session_minutes_per_month import PlanSessionMinutesPerMonth

        d = dict(src_dict)
        name = d.pop("name")

        max_keys = d.pop("maxKeys")

        requests_per_minute = PlanRequestsPerMinute.from_dict(d.pop("requestsPerMinute"))

        requests_per_day = PlanRequestsPerDay.from_dict(d.pop("requestsPerDay"))

        max_concurrent_connections = PlanMaxConcurrentConnections.from_dict(d.pop("maxConcurrentConnections"))

        requests_per_month = PlanRequestsPerMonth.from_dict(d.pop("requestsPerMonth"))

        session_minutes_per_month = PlanSessionMinutesPerMonth.from_dict(d.pop("sessionMinutesPerMonth"))

        def _parse_max_in_flight(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        max_in_flight = _parse_max_in_flight(d.pop("maxInFlight"))

        plan = cls(
            name=name,
            max_keys=max_keys,
            requests_per_minute=requests_per_minute,
            requests_per_day=requests_per_day,
            max_concurrent_connections=max_concurrent_connections,
            requests_per_month=requests_per_month,
            session_minutes_per_month=session_minutes_per_month,
            max_in_flight=max_in_flight,
        )

        return plan
