from typing import Literal, cast

AdminGetTenantUsageGranularity = Literal["day", "hour", "month"]

ADMIN_GET_TENANT_USAGE_GRANULARITY_VALUES: set[AdminGetTenantUsageGranularity] = {
    "day",
    "hour",
    "month",
}


def check_admin_get_tenant_usage_granularity(value: str) -> AdminGetTenantUsageGranularity:
    if value in ADMIN_GET_TENANT_USAGE_GRANULARITY_VALUES:
        return cast(AdminGetTenantUsageGranularity, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {ADMIN_GET_TENANT_USAGE_GRANULARITY_VALUES!r}")
