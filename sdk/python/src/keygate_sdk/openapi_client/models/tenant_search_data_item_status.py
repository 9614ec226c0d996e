from typing import Literal, cast

TenantSearchDataItemStatus = Literal["active", "suspended"]

TENANT_SEARCH_DATA_ITEM_STATUS_VALUES: set[TenantSearchDataItemStatus] = {
    "active",
    "suspended",
}


def check_tenant_search_data_item_status(value: str) -> TenantSearchDataItemStatus:
    if value in TENANT_SEARCH_DATA_ITEM_STATUS_VALUES:
        return cast(TenantSearchDataItemStatus, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {TENANT_SEARCH_DATA_ITEM_STATUS_VALUES!r}")
