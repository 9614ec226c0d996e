from typing import Literal, cast

WebhookDeliveryOutcome = Literal["dead", "delivered", "retry"]

WEBHOOK_DELIVERY_OUTCOME_VALUES: set[WebhookDeliveryOutcome] = {
    "dead",
    "delivered",
    "retry",
}


def check_webhook_delivery_outcome(value: str) -> WebhookDeliveryOutcome:
    if value in WEBHOOK_DELIVERY_OUTCOME_VALUES:
        return cast(WebhookDeliveryOutcome, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {WEBHOOK_DELIVERY_OUTCOME_VALUES!r}")
