"""A FastAPI backend behind a real keygate (embedded store, and Redis): it accepts only what keygate signed, and
its webhook receiver verifies keygate's real deliveries.

keygate's upstream URL is `<app>/api`, so the signature covers a base path as well as the canonical path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from keygate_sdk import KeyCreated, KeyRevoked, unwrap
from keygate_sdk.client import admin_client, self_service_client
from keygate_sdk.openapi_client.api.admin import admin_create_tenant, admin_create_webhook_endpoint
from keygate_sdk.openapi_client.api.self_service import create_api_key, mint_session_token, revoke_api_key
from keygate_sdk.openapi_client.models import (
    AdminCreateTenantBody,
    AdminCreateWebhookEndpointBody,
    CreateApiKeyBody,
    MintSessionTokenBody,
    MintSessionTokenBodyMetadata,
)

from .processes import ADMIN_TOKEN, FAST_WEBHOOKS, Keygate, keygate, redis_server, serve_asgi, wait_for
from .voice_app import Seen, create_app

SECRET = "python-e2e-signing-secret-0123456789"
# Session tokens need shared signing keys on Redis (the embedded store would make one of its own).
ENV = {"KEYGATE_SIGNING_SECRET": SECRET, "KEYGATE_TOKEN_SIGNING_KEYS": "py1:python-e2e-token-signing-key-0123456789"}
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass
class Stack:
    kg: Keygate
    app_url: str
    seen: Seen
    key: str
    tenant_id: str
    key_id: str


@pytest.fixture(scope="module", params=["embedded", "redis"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    app, seen = create_app(SECRET)
    with serve_asgi(app) as app_url:
        if request.param == "redis":
            with (
                redis_server() as redis_url,
                keygate(
                    upstream=f"{app_url}/api",
                    redis_url=redis_url,
                    config={"webhooks": FAST_WEBHOOKS},
                    env=ENV,
                ) as kg,
            ):
                yield _stack(kg, app_url, seen)
        else:
            with keygate(upstream=f"{app_url}/api", config={"webhooks": FAST_WEBHOOKS}, env=ENV) as kg:
                yield _stack(kg, app_url, seen)


def _stack(kg: Keygate, app_url: str, seen: Seen) -> Stack:
    with admin_client(kg.ops_url, ADMIN_TOKEN) as admin:
        created = unwrap(admin_create_tenant.sync_detailed(client=admin, body=AdminCreateTenantBody(name="voice")))
    return Stack(kg, app_url, seen, created.api_key.key, created.tenant.id, created.api_key.id)


def test_signed_requests_reach_the_app_with_their_identity(stack: Stack) -> None:
    res = httpx.get(f"{stack.kg.url}/v1/calls/7?x=1", headers={"X-API-Key": stack.key})
    assert res.status_code == 200, res.text
    assert res.json() == {"call": "7", "tenant": stack.tenant_id, "key": stack.key_id}
    # Not decoded by the verifier: keygate forwards the canonical path, which is what it signs.
    res = httpx.get(f"{stack.kg.url}/v1/%63alls/8", headers={"X-API-Key": stack.key})
    assert res.status_code == 200, res.text
    assert res.json()["call"] == "8"
    res = httpx.post(f"{stack.kg.url}/v1/calls", headers={"X-API-Key": stack.key}, json={"assistantId": "a"})
    assert res.status_code == 200, res.text
    assert res.json() == {"tenant": stack.tenant_id, "body": '{"assistantId":"a"}'}
    who = stack.seen.identities[-1]
    assert (who.tenant_id, who.key_id, who.key_type, who.permissions) == (
        stack.tenant_id,
        stack.key_id,
        "private",
        ("*",),
    )


def test_requests_that_keygate_refused_never_reach_the_app(stack: Stack) -> None:
    before = len(stack.seen.identities)
    assert httpx.get(f"{stack.kg.url}/v1/calls/7").status_code == 401
    assert httpx.get(f"{stack.kg.url}/v1/calls/7", headers={"X-API-Key": "kg_live_notakey"}).status_code == 401
    assert len(stack.seen.identities) == before


def test_requests_around_keygate_are_refused(stack: Stack) -> None:
    before = len(stack.seen.identities)
    # Unsigned, straight to the app.
    res = httpx.get(f"{stack.app_url}/api/v1/calls/7")
    assert res.status_code == 401
    assert res.json()["error"] == {
        "code": "invalid_signature",
        "reason": "missing",
        "message": res.json()["error"]["message"],
    }
    # Forged identity headers.
    forged = {
        "X-Tenant-Id": stack.tenant_id,
        "X-Api-Key-Id": stack.key_id,
        "X-Keygate-Signature": "t=1767225600,v1=" + "0" * 64,
    }
    res = httpx.get(f"{stack.app_url}/api/v1/calls/7", headers=forged)
    assert (res.status_code, res.json()["error"]["reason"]) == (401, "stale")
    # A request keygate really signed, replayed to another path, with another method, for another tenant or key,
    # or with two signatures.
    assert httpx.get(f"{stack.kg.url}/v1/calls/7", headers={"X-API-Key": stack.key}).status_code == 200
    signed = {k: v for k, v in stack.seen.headers[-1].items() if k.startswith("x-") and k != "x-forwarded-for"}
    before = len(stack.seen.identities)
    replays = [
        ("GET", "/api/v1/calls/8", signed),
        ("GET", "/v1/calls/7", signed),
        ("DELETE", "/api/v1/calls/7", signed),
        ("GET", "/api/v1/calls/7", {**signed, "x-tenant-id": "ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Z"}),
        ("GET", "/api/v1/calls/7", {**signed, "x-api-key-id": "key_01JZ8Q5A1B2C3D4E5F6G7H8J9K"}),
    ]
    for method, path, headers in replays:
        res = httpx.request(method, f"{stack.app_url}{path}", headers=headers)
        assert res.status_code == 401, (method, path)
        assert res.json()["error"]["reason"] == "mismatch", (method, path)
    res = httpx.get(
        f"{stack.app_url}/api/v1/calls/7",
        headers=[*signed.items(), ("x-keygate-signature", signed["x-keygate-signature"])],
    )
    assert (res.status_code, res.json()["error"]["reason"]) == (401, "malformed")
    assert len(stack.seen.identities) == before
    # Exempt paths (a probe) are served without a signature.
    assert httpx.get(f"{stack.app_url}/healthz").status_code == 200


def test_voice_websocket_is_signed_too(stack: Stack) -> None:
    ws_url = stack.kg.url.replace("http://", "ws://")
    with connect(f"{ws_url}/v1/voice/asst_1/stream", additional_headers={"X-API-Key": stack.key}) as ws:
        assert json.loads(ws.recv(timeout=10)) == {
            "assistant": "asst_1",
            "tenant": stack.tenant_id,
            "key": stack.key_id,
        }
    # Straight to the app, the handshake is refused before the handler runs.
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{stack.app_url.replace('http://', 'ws://')}/api/v1/voice/asst_1/stream", open_timeout=10)
    assert refused.value.response.status_code == 403


def test_session_tokens_minted_by_the_backend_reach_the_app_as_their_key(stack: Stack) -> None:
    metadata = MintSessionTokenBodyMetadata.from_dict({"userId": "u_42"})
    body = MintSessionTokenBody(
        ttl_seconds=60, permissions=["calls:read", "voice:connect"], max_uses=2, metadata=metadata
    )
    with self_service_client(stack.kg.url, stack.key) as tenant:
        minted = unwrap(mint_session_token.sync_detailed(client=tenant, body=body))
    assert minted.token.startswith("kg_st_") and minted.key_id == stack.key_id
    res = httpx.get(f"{stack.kg.url}/v1/calls/9", headers={"Authorization": f"Bearer {minted.token}"})
    assert res.status_code == 200, res.text
    who = stack.seen.identities[-1]
    assert (who.tenant_id, who.key_id, who.key_type) == (stack.tenant_id, stack.key_id, "session")
    assert (who.session_token_id, who.session_metadata) == (minted.id, {"userId": "u_42"})
    assert who.permissions == ("calls:read", "voice:connect")
    # Narrowed: a write is refused by keygate and never reaches the app.
    assert (
        httpx.post(f"{stack.kg.url}/v1/calls", headers={"Authorization": f"Bearer {minted.token}"}, json={}).status_code
        == 403
    )
    # The voice session, with the token on the URL (keygate removes it before the app).
    ws_url = stack.kg.url.replace("http://", "ws://")
    with connect(f"{ws_url}/v1/voice/asst_1/stream?token={minted.token}") as ws:
        assert json.loads(ws.recv(timeout=10)) == {
            "assistant": "asst_1",
            "tenant": stack.tenant_id,
            "key": stack.key_id,
        }


def test_webhook_receiver_verifies_keygates_deliveries(stack: Stack) -> None:
    with admin_client(stack.kg.ops_url, ADMIN_TOKEN) as admin:
        body = AdminCreateWebhookEndpointBody(
            url=f"{stack.app_url}/hooks/keygate", events=["key.created", "key.revoked"]
        )
        endpoint = unwrap(admin_create_webhook_endpoint.sync_detailed(client=admin, body=body))
    stack.seen.webhook_secrets.append(endpoint.secret)
    with self_service_client(stack.kg.url, stack.key) as tenant:
        made = unwrap(
            create_api_key.sync_detailed(
                client=tenant, body=CreateApiKeyBody(name="hooked", permissions=["calls:read"])
            )
        )
        assert unwrap(revoke_api_key.sync_detailed(made.id, client=tenant)) is None

    def created() -> list[KeyCreated]:
        return [e for e in stack.seen.events if isinstance(e, KeyCreated) and e.key_id == made.id]

    def revoked() -> list[KeyRevoked]:
        return [e for e in stack.seen.events if isinstance(e, KeyRevoked) and e.key_id == made.id]

    wait_for(lambda: created() and revoked(), what="key.created and key.revoked deliveries")
    event = created()[0]
    assert (event.tenant_id, event.name, event.key_type, event.permissions, event.actor) == (
        stack.tenant_id,
        "hooked",
        "private",
        ("calls:read",),
        stack.key_id,
    )
    assert revoked()[0].reason is None
    assert stack.seen.refused_deliveries == 0
    # A delivery not from keygate (no valid signature) is refused by the receiver.
    forged = httpx.post(
        f"{stack.app_url}/hooks/keygate",
        content=json.dumps({"type": "key.revoked", "timestamp": "2026-01-01T00:00:00.000Z", "data": {}}),
        headers={"webhook-id": "msg_forged", "webhook-timestamp": "1767225600", "webhook-signature": "v1,AAAA"},
    )
    assert forged.status_code == 400
    assert stack.seen.refused_deliveries == 1


def test_provisioning_script_creates_a_tenant_a_key_and_a_session_token(stack: Stack) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "provision.py"),
            "--admin-url",
            stack.kg.ops_url,
            "--public-url",
            stack.kg.url,
            "--admin-token",
            ADMIN_TOKEN,
            "--tenant",
            "Acme",
            "--permissions",
            "calls:read",
            "session-tokens:write",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["tenantId"].startswith("ten_") and made["keyId"].startswith("key_")
    assert made["permissions"] == ["calls:read", "session-tokens:write"]
    # The key works through keygate, for what it may do, and the app sees the new tenant.
    res = httpx.get(f"{stack.kg.url}/v1/calls/1", headers={"X-API-Key": made["key"]})
    assert res.status_code == 200, res.text
    assert res.json()["tenant"] == made["tenantId"]
    assert httpx.post(f"{stack.kg.url}/v1/calls", headers={"X-API-Key": made["key"]}, json={}).status_code == 403
    # The session token the key minted works as the key, as far as the token allows.
    res = httpx.get(f"{stack.kg.url}/v1/calls/2", headers={"Authorization": f"Bearer {made['sessionToken']}"})
    assert res.status_code == 200, res.text
    assert (res.json()["key"], stack.seen.identities[-1].session_token_id) == (made["keyId"], made["sessionTokenId"])
