from typing import Literal, cast

FleetRedisType0Status = Literal["down", "up"]

FLEET_REDIS_TYPE_0_STATUS_VALUES: set[FleetRedisType0Status] = {
    "down",
    "up",
}


def check_fleet_redis_type_0_status(value: str) -> FleetRedisType0Status:
    if value in FLEET_REDIS_TYPE_0_STATUS_VALUES:
        return cast(FleetRedisType0Status, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {FLEET_REDIS_TYPE_0_STATUS_VALUES!r}")
