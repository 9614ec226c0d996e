from typing import Literal, cast

AdminCreateWebhookEndpointBodyEventsItem = Literal[
    "*",
    "key.created",
    "key.expired",
    "key.expiring",
    "key.revoked",
    "key.rotated",
    "key.updated",
    "limits.blocked",
    "quota.threshold",
    "webhook.disabled",
]

ADMIN_CREATE_WEBHOOK_ENDPOINT_BODY_EVENTS_ITEM_VALUES: set[AdminCreateWebhookEndpointBodyEventsItem] = {
    "*",
    "key.created",
    "key.expired",
    "key.expiring",
    "key.revoked",
    "key.rotated",
    "key.updated",
    "limits.blocked",
    "quota.threshold",
    "webhook.disabled",
}


def check_admin_create_webhook_endpoint_body_events_item(value: str) -> AdminCreateWebhookEndpointBodyEventsItem:
    if value in ADMIN_CREATE_WEBHOOK_ENDPOINT_BODY_EVENTS_ITEM_VALUES:
        return cast(AdminCreateWebhookEndpointBodyEventsItem, value)
    raise TypeError(
        f"Unexpected value {value!r}. Expected one of {ADMIN_CREATE_WEBHOOK_ENDPOINT_BODY_EVENTS_ITEM_VALUES!r}"
    )
