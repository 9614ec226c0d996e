"""The cross-language vectors (test/vectors/signatures.json), which keygate's own TypeScript tests read too:
keygate_sdk must give every signed request and webhook delivery the verdict keygate/verify and standardwebhooks
give it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from freezegun import freeze_time

from keygate_sdk import (
    IdentityVerificationError,
    KeyCreated,
    KeyExpired,
    KeyExpiring,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LimitsBlocked,
    QuotaThreshold,
    UnknownEvent,
    WebhookDisabled,
    WebhookVerificationError,
    verify_identity,
    verify_webhook,
)
from keygate_sdk.starlette import KeygateMiddleware

from .processes import REPO

VECTORS: dict[str, Any] = json.loads((REPO / "test" / "vectors" / "signatures.json").read_text())
IDENTITY: list[dict[str, Any]] = VECTORS["identity"]
WEBHOOKS: list[dict[str, Any]] = VECTORS["webhooks"]


def test_the_vectors_cover_every_kind() -> None:
    kinds = {v["name"].split(":")[0] for v in IDENTITY}
    assert kinds == {"valid", "wrong base path", "canonical path", "tampered", "expired", "unsigned", "malformed"}
    assert {v["name"].split(":")[0] for v in WEBHOOKS} == {"valid", "tampered", "expired", "unsigned", "malformed"}


@pytest.mark.parametrize("v", IDENTITY, ids=[v["name"] for v in IDENTITY])
def test_identity_vector(v: dict[str, Any]) -> None:
    def verify() -> object:
        return verify_identity(
            v["headers"],
            v["secret"],
            method=v["method"],
            path=v["path"],
            base_path=v["basePath"],
            tolerance_seconds=v.get("toleranceSeconds", 300),
            now=v["now"],
        )

    if v["expect"] == "ok":
        identity = verify()
        assert identity == verify_identity(
            list(v["headers"].items()),
            v["secret"].encode(),
            method=v["method"],
            path=v["path"],
            base_path=v["basePath"],
            now=v["now"],
        )
    else:
        with pytest.raises(IdentityVerificationError) as err:
            verify()
        assert err.value.reason == v["expect"]


@pytest.mark.anyio
@pytest.mark.parametrize("v", IDENTITY, ids=[v["name"] for v in IDENTITY])
async def test_identity_vector_through_the_asgi_middleware(v: dict[str, Any]) -> None:
    """The middleware reaches the same verdict on the same request (path and headers as an ASGI server gives them)."""
    reached: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["state"]["keygate"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    middleware = KeygateMiddleware(
        app, secret=v["secret"], base_path=v["basePath"], tolerance_seconds=v.get("toleranceSeconds", 300)
    )
    scope = {
        "type": "http",
        "method": v["method"],
        "path": v["path"],
        "raw_path": v["path"].encode(),
        "headers": [(k.encode("latin-1"), val.encode("utf-8")) for k, val in v["headers"].items()],
    }
    with freeze_time(datetime.fromtimestamp(v["now"], tz=timezone.utc)):
        await middleware(scope, receive, send)
    status = sent[0]["status"]
    if v["expect"] == "ok":
        assert (status, len(reached)) == (204, 1)
    else:
        assert (status, reached) == (401, [])
        assert json.loads(sent[1]["body"])["error"]["reason"] == v["expect"]


@pytest.mark.parametrize("v", WEBHOOKS, ids=[v["name"] for v in WEBHOOKS])
def test_webhook_vector(v: dict[str, Any]) -> None:
    with freeze_time(datetime.fromtimestamp(v["now"], tz=timezone.utc)):
        if v["expect"] == "ok":
            event = verify_webhook(v["body"].encode(), v["headers"], v["secret"])
            body = json.loads(v["body"])
            assert event.id == v["headers"]["webhook-id"]
            assert event.type == body["type"]
            assert event.timestamp == datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
        else:
            with pytest.raises(WebhookVerificationError):
                verify_webhook(v["body"].encode(), v["headers"], v["secret"])


def _event(name: str) -> object:
    v = next(v for v in WEBHOOKS if v["name"] == name)
    with freeze_time(datetime.fromtimestamp(v["now"], tz=timezone.utc)):
        return verify_webhook(v["body"], v["headers"], v["secret"])


def test_typed_events() -> None:
    t = "ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Y"
    k = "key_01JZ8Q5A1B2C3D4E5F6G7H8J9K"
    utc = timezone.utc
    at = datetime(2026, 1, 1, tzinfo=utc)
    created = _event("valid: key.created")
    assert created == KeyCreated(
        "msg_01JZ8QA0000000000000000001", at, t, k, "admin", "voice agent", "private", ("calls:read", "calls:write")
    )
    assert _event("valid: key.updated") == KeyUpdated(
        "msg_01JZ8QA0000000000000000002", at, t, k, k, ("name", "rateLimit")
    )
    assert _event("valid: key.rotated") == KeyRotated("msg_01JZ8QA0000000000000000003", at, t, k, "admin", 3600)
    assert _event("valid: key.revoked") == KeyRevoked("msg_01JZ8QA0000000000000000004", at, t, k, "admin", None)
    assert _event("valid: key.revoked with its tenant") == KeyRevoked(
        "msg_01JZ8QA0000000000000000005", at, t, k, "admin", "tenant_deleted"
    )
    assert _event("valid: key.expiring") == KeyExpiring(
        "msg_01JZ8QA0000000000000000006", at, t, k, None, datetime(2026, 1, 8, tzinfo=utc), 7
    )
    assert _event("valid: key.expired") == KeyExpired(
        "msg_01JZ8QA0000000000000000007", at, t, k, "voice agent", datetime(2025, 12, 31, 23, tzinfo=utc)
    )
    assert _event("valid: quota.threshold") == QuotaThreshold(
        "msg_01JZ8QA0000000000000000008", at, t, None, "sessionMinutesPerMonth", 80, 1000, 800, "2026-01"
    )
    assert _event("valid: limits.blocked") == LimitsBlocked(
        "msg_01JZ8QA0000000000000000009",
        at,
        "2001:db8:7:1::/64",
        20,
        60,
        300,
        datetime(2026, 1, 1, 0, 5, tzinfo=utc),
        0,
    )
    assert _event("valid: webhook.disabled") == WebhookDisabled(
        "msg_01JZ8QA0000000000000000010",
        at,
        t,
        "whe_01JZ8QB0000000000000000001",
        "https://hooks.example.com/keygate",
        datetime(2025, 12, 31, tzinfo=utc),
        at,
    )
    assert _event("valid: an event type added later") == UnknownEvent(
        "msg_01JZ8QA0000000000000000011", at, "session.opened", {"tenantId": t}
    )
