from typing import Literal, cast

GetUsageGranularity = Literal["day", "hour", "month"]

GET_USAGE_GRANULARITY_VALUES: set[GetUsageGranularity] = {
    "day",
    "hour",
    "month",
}


def check_get_usage_granularity(value: str) -> GetUsageGranularity:
    if value in GET_USAGE_GRANULARITY_VALUES:
        return cast(GetUsageGranularity, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {GET_USAGE_GRANULARITY_VALUES!r}")
