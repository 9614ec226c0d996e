"""Verifying keygate's webhook deliveries, with the Standard Webhooks specification's own library.

    from keygate_sdk.webhooks import WebhookVerificationError, verify_webhook

    @app.post("/hooks/keygate")
    async def hook(request: Request) -> Response:
        try:
            event = verify_webhook(await request.body(), request.headers, secret=os.environ["KEYGATE_WEBHOOK_SECRET"])
        except WebhookVerificationError:
            return Response(status_code=400)
        match event:
            case KeyRevoked(key_id=key_id): forget(key_id)
        return Response(status_code=204)

Pass the body exactly as received (bytes): the signature covers those bytes. A delivery is accepted within five
minutes either way of its `webhook-timestamp` (the library's tolerance). keygate delivers at least once: dedupe
on `event.id`. While an endpoint's secret is being rotated, keygate signs with the old and the new secret, so
either verifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from .events import InvalidWebhookEvent, WebhookEvent, parse_event

__all__ = ["InvalidWebhookEvent", "WebhookVerificationError", "verify_webhook"]


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """The typed event of a delivery whose signature `secret` (`whsec_…`) verifies.

    Raises WebhookVerificationError (standardwebhooks') for a missing, wrong or expired signature, and
    InvalidWebhookEvent (a ValueError) for a verified body that is not a keygate event.
    """
    plain = {name.lower(): value for name, value in headers.items()}
    parsed: Any = Webhook(secret).verify(body, plain)
    if not isinstance(parsed, Mapping):
        raise InvalidWebhookEvent("body", "a JSON object")
    return parse_event(plain["webhook-id"], parsed)
