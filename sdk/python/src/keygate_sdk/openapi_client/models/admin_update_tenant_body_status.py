from typing import Literal, cast

AdminUpdateTenantBodyStatus = Literal["active", "suspended"]

ADMIN_UPDATE_TENANT_BODY_STATUS_VALUES: set[AdminUpdateTenantBodyStatus] = {
    "active",
    "suspended",
}


def check_admin_update_tenant_body_status(value: str) -> AdminUpdateTenantBodyStatus:
    if value in ADMIN_UPDATE_TENANT_BODY_STATUS_VALUES:
        return cast(AdminUpdateTenantBodyStatus, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {ADMIN_UPDATE_TENANT_BODY_STATUS_VALUES!r}")
