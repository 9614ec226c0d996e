from typing import Literal, cast

FleetStore = Literal["memory", "redis"]

FLEET_STORE_VALUES: set[FleetStore] = {
    "memory",
    "redis",
}


def check_fleet_store(value: str) -> FleetStore:
    if value in FLEET_STORE_VALUES:
        return cast(FleetStore, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {FLEET_STORE_VALUES!r}")
