"""parse_event on bodies that are not the events they claim to be (after a valid signature: a keygate bug or a
sender that is not keygate holding the secret), and verify_webhook on a body that is not an object."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from standardwebhooks import Webhook

from keygate_sdk import InvalidWebhookEvent, KeyRotated, parse_event, verify_webhook

T = "2026-01-01T00:00:00.000Z"
ROTATED = {"tenantId": "ten_1", "keyId": "key_1", "actor": "admin", "gracePeriodSeconds": 60}


def test_a_well_formed_event_parses() -> None:
    event = parse_event("msg_1", {"type": "key.rotated", "timestamp": T, "data": ROTATED})
    assert isinstance(event, KeyRotated) and event.grace_period_seconds == 60


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"timestamp": T, "data": ROTATED}, "type"),
        ({"type": "key.rotated", "data": ROTATED}, "timestamp"),
        ({"type": "key.rotated", "timestamp": "yesterday", "data": ROTATED}, "timestamp"),
        ({"type": "key.rotated", "timestamp": T, "data": [ROTATED]}, "data"),
        (
            {"type": "key.rotated", "timestamp": T, "data": {**ROTATED, "gracePeriodSeconds": True}},
            "data.gracePeriodSeconds",
        ),
        (
            {"type": "key.rotated", "timestamp": T, "data": {**ROTATED, "gracePeriodSeconds": "60"}},
            "data.gracePeriodSeconds",
        ),
        (
            {"type": "key.rotated", "timestamp": T, "data": {k: v for k, v in ROTATED.items() if k != "keyId"}},
            "data.keyId",
        ),
        (
            {
                "type": "key.created",
                "timestamp": T,
                "data": {**ROTATED, "name": None, "keyType": "private", "permissions": ["a", 1]},
            },
            "data.permissions",
        ),
        (
            {"type": "key.expired", "timestamp": T, "data": {**ROTATED, "name": None, "expiresAt": "soon"}},
            "data.expiresAt",
        ),
        ({"type": "key.revoked", "timestamp": T, "data": {**ROTATED, "tenantId": None}}, "data.tenantId"),
    ],
)
def test_malformed_events_name_the_field(body: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidWebhookEvent) as err:
        parse_event("msg_1", body)
    assert err.value.path == path


def test_a_verified_body_that_is_not_an_object() -> None:
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789").decode()
    body = b'["key.revoked"]'
    now = int(time.time())
    signature = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, tz=timezone.utc), body)
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(now), "Webhook-Signature": signature}
    with pytest.raises(InvalidWebhookEvent) as err:
        verify_webhook(body, headers, secret)
    assert err.value.path == "body"
