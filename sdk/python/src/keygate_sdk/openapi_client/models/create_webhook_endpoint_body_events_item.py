from typing import Literal, cast

CreateWebhookEndpointBodyEventsItem = Literal[
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

CREATE_WEBHOOK_ENDPOINT_BODY_EVENTS_ITEM_VALUES: set[CreateWebhookEndpointBodyEventsItem] = {
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


def check_create_webhook_endpoint_body_events_item(value: str) -> CreateWebhookEndpointBodyEventsItem:
    if value in CREATE_WEBHOOK_ENDPOINT_BODY_EVENTS_ITEM_VALUES:
        return cast(CreateWebhookEndpointBodyEventsItem, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {CREATE_WEBHOOK_ENDPOINT_BODY_EVENTS_ITEM_VALUES!r}")
