"""Attacks on what a Python backend behind keygate trusts: the identity the SDK hands it, the path and method it
verifies, and keygate's webhook deliveries.

A real keygate (embedded store) in front of a real uvicorn serving a Starlette app with KeygateMiddleware; the
client holds a narrow key (calls:read). Whoever can see traffic between keygate and the backend replays what
keygate sent, rewritten; webhook deliveries are keygate's real ones, captured by the app and then tampered with.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keygate_sdk import (
    IdentityVerificationError,
    KeyCreated,
    WebhookVerificationError,
    unwrap,
    verify_identity,
    verify_webhook,
)
from keygate_sdk.client import admin_client, self_service_client
from keygate_sdk.openapi_client.api.admin import admin_create_tenant, admin_create_webhook_endpoint
from keygate_sdk.openapi_client.api.self_service import create_api_key
from keygate_sdk.openapi_client.models import AdminCreateTenantBody, AdminCreateWebhookEndpointBody, CreateApiKeyBody
from keygate_sdk.starlette import KeygateMiddleware, keygate_identity

from .processes import ADMIN_TOKEN, FAST_WEBHOOKS, Keygate, keygate, serve_asgi, wait_for

SECRET = "python-attacks-signing-secret-0123456789"


@dataclass
class Seen:
    requests: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[tuple[bytes, list[tuple[str, str]]]] = field(default_factory=list)


def create_app(seen: Seen) -> Starlette:
    async def anything(request: Request) -> JSONResponse:
        who = keygate_identity(request)
        seen.requests.append(
            {
                "method": request.method,
                "raw_path": request.scope["raw_path"].decode("latin-1"),
                "headers": request.headers.raw,
                "identity": who,
            }
        )
        return JSONResponse({"tenant": who.tenant_id, "key": who.key_id, "permissions": list(who.permissions)})

    async def hook(request: Request) -> Response:
        seen.deliveries.append((await request.body(), [(k.decode(), v.decode()) for k, v in request.headers.raw]))
        return Response(status_code=204)

    app = Starlette(
        routes=[
            Route("/hooks", hook, methods=["POST"]),
            Route("/{rest:path}", anything, methods=["GET", "HEAD", "POST", "DELETE"]),
        ]
    )
    app.add_middleware(KeygateMiddleware, secret=SECRET, exempt_paths={"/hooks"})
    return app


@dataclass
class Stack:
    kg: Keygate
    app_url: str
    seen: Seen
    admin_key: str
    narrow: str
    tenant_id: str
    narrow_id: str
    webhook_secret: str


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    seen = Seen()
    with (
        serve_asgi(create_app(seen)) as app_url,
        keygate(upstream=app_url, config={"webhooks": FAST_WEBHOOKS}, env={"KEYGATE_SIGNING_SECRET": SECRET}) as kg,
    ):
        with admin_client(kg.ops_url, ADMIN_TOKEN) as admin:
            created = unwrap(admin_create_tenant.sync_detailed(client=admin, body=AdminCreateTenantBody(name="atk")))
            endpoint = unwrap(
                admin_create_webhook_endpoint.sync_detailed(
                    client=admin, body=AdminCreateWebhookEndpointBody(url=f"{app_url}/hooks", events=["key.created"])
                )
            )
        with self_service_client(kg.url, created.api_key.key) as tenant:
            narrow = unwrap(
                create_api_key.sync_detailed(
                    client=tenant, body=CreateApiKeyBody(name="narrow", permissions=["calls:read"])
                )
            )
        yield Stack(kg, app_url, seen, created.api_key.key, narrow.key, created.tenant.id, narrow.id, endpoint.secret)


def raw_request(url: str, head: str) -> int:
    """Writes a request head as given (names, spellings and copies kept); returns the status code."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10) as s:
        s.sendall(head.encode("latin-1"))
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def last_for(stack: Stack, raw_path: str) -> dict[str, Any]:
    found = [r for r in stack.seen.requests if r["raw_path"] == raw_path]
    assert found, raw_path
    return found[-1]


def test_smuggled_identity_fields_never_become_the_identity(stack: Stack) -> None:
    forged_tenant = "ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Z"
    spellings = [
        f"X-Tenant-Id: {forged_tenant}",
        f"x-tenant-id: {forged_tenant}",
        f"X_Tenant_Id: {forged_tenant}",
        "X-API-KEY-PERMISSIONS: *",
        "x_api_key_permissions: *",
        "X-Api-Key-Type: private",
        'X-Session-Token-Metadata: {"admin":true}',
        "X-Keygate-Signature: t=1,v1=" + "0" * 64,
        "X-Request-Id: forged",
        # gunicorn's SCRIPT_NAME: the server would route on the path without it (keygate drops the field).
        "SCRIPT_NAME: /v1/calls",
    ]
    path = "/v1/calls/smuggled"
    head = (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {stack.narrow}\r\n"
        + "".join(f"{s}\r\n" for s in spellings)
        + "Connection: close\r\n\r\n"
    )
    assert raw_request(stack.kg.url, head) == 200
    seen = last_for(stack, path)
    who = seen["identity"]
    assert (who.tenant_id, who.key_id, who.key_type, who.permissions) == (
        stack.tenant_id,
        stack.narrow_id,
        "private",
        ("calls:read",),
    )
    assert who.session_metadata is None
    # X-Request-Id is the client's own when well-formed (for tracing across both): chosen by the client, never
    # signed, so an idempotency or replay record keyed on it alone is one any client can collide with.
    assert who.request_id == "forged"
    names = [k.decode().lower() for k, _ in seen["headers"]]
    for name in ("x-tenant-id", "x-api-key-permissions", "x-keygate-signature", "x-api-key-type"):
        assert names.count(name) == 1, name
    assert not [n for n in names if "_" in n]


def _signed_copy(stack: Stack, path: str, method: str = "GET") -> dict[str, str]:
    """What keygate sent the app for `method path` with the narrow key: its x- fields, as a replay would copy them."""
    assert httpx.request(method, f"{stack.kg.url}{path}", headers={"X-API-Key": stack.narrow}).status_code == 200
    seen = last_for(stack, path)
    return {k.decode(): v.decode() for k, v in seen["headers"] if k.startswith(b"x-") and k != b"x-forwarded-for"}


def test_a_signed_request_replayed_with_another_method_path_or_form_is_refused(stack: Stack) -> None:
    signed = _signed_copy(stack, "/v1/calls/7")
    sig = signed["x-keygate-signature"]
    t, v1 = sig.split(",")
    mac = v1[3:]
    before = len(stack.seen.requests)
    # Another method (HEAD, which Starlette runs as GET, included), another path, decoded or with a slash.
    for method, path in [
        ("DELETE", "/v1/calls/7"),
        ("HEAD", "/v1/calls/7"),
        ("POST", "/v1/calls/7"),
        ("GET", "/v1/calls/8"),
        ("GET", "/v1/calls/7/"),
        ("GET", "/v1/calls/%37"),
        ("GET", "/v1/calls/7;admin"),
        ("GET", "//v1/calls/7"),
    ]:
        res = httpx.request(method, f"{stack.app_url}{path}", headers=signed)
        assert res.status_code == 401, (method, path)
        if method != "HEAD":
            assert res.json()["error"]["reason"] == "mismatch", (method, path)
    # The query string is not signed: the same path with another query verifies (as documented).
    assert httpx.get(f"{stack.app_url}/v1/calls/7?x=1", headers=signed).status_code == 200
    # Rewritten forms of the genuine header.
    forms = {
        f"{t},v1={mac.upper()}": "malformed",
        f"{t},v1={mac},v1={mac}": "malformed",
        f"{t}, v1={mac}": "malformed",
        f"{t},v1={mac} ,": "malformed",
        f"v1={mac},{t}": "malformed",
        f"{t},v1a={mac}": "malformed",
        f"t=0{t[2:].zfill(12)},v1={mac}": "malformed",
        f"t=999999999999,v1={mac}": "stale",
    }
    for header, reason in forms.items():
        res = httpx.get(f"{stack.app_url}/v1/calls/7", headers={**signed, "x-keygate-signature": header})
        assert (res.status_code, res.json()["error"]["reason"]) == (401, reason), header
    # An Arabic-Indic digit in t (Python's \d would take it; a header cannot carry it, a mapping can).
    with pytest.raises(IdentityVerificationError) as arabic:
        verify_identity(
            {**signed, "x-keygate-signature": f"t=\u0661{t[3:]},v1={mac}"}, SECRET, method="GET", path="/v1/calls/7"
        )
    assert arabic.value.reason == "malformed"
    # Two copies of a signed field (the genuine one and a forged one, in either order) never verify.
    for field_name, forged in [("x-tenant-id", "ten_forged"), ("x-api-key-id", "key_forged")]:
        for pairs in (
            [*signed.items(), (field_name, forged)],
            [(field_name, forged), *signed.items()],
        ):
            res = httpx.get(f"{stack.app_url}/v1/calls/7", headers=pairs)
            assert res.status_code == 401, pairs
    assert len(stack.seen.requests) == before + 1  # only the query-string replay


def test_base_path_never_lets_a_path_verify_as_another(stack: Stack) -> None:
    signed = _signed_copy(stack, "/v1/calls/base")
    tenant, key = signed["x-tenant-id"], signed["x-api-key-id"]
    assert verify_identity(signed, SECRET, method="GET", path="/v1/calls/base").tenant_id == tenant
    # A prefix removed between keygate and the backend: the path received behind it verifies, with or without a
    # trailing slash on the prefix; no other split, case or prefix does.
    assert verify_identity(signed, SECRET, method="GET", path="/calls/base", base_path="/v1").key_id == key
    assert verify_identity(signed, SECRET, method="GET", path="/calls/base", base_path="/v1/").key_id == key
    for path, base in [
        ("/v1/calls/base", "/v1"),
        ("calls/base", "/v1"),
        ("/calls/base", "/V1"),
        ("/base", "/v1/calls/base"),
        ("/v1/calls/base", "/svc"),
    ]:
        with pytest.raises(IdentityVerificationError) as refused:
            verify_identity(signed, SECRET, method="GET", path=path, base_path=base)
        assert refused.value.reason == "mismatch", (path, base)
    for base in ("v1", "/v1?x", "/v1#x"):
        with pytest.raises(ValueError, match="base_path"):
            verify_identity(signed, SECRET, method="GET", path="/calls/base", base_path=base)


def _delivery(stack: Stack) -> tuple[bytes, dict[str, str]]:
    """A real key.created delivery from keygate, as the app received it."""
    before = len(stack.seen.deliveries)
    with self_service_client(stack.kg.url, stack.admin_key) as tenant:
        unwrap(create_api_key.sync_detailed(client=tenant, body=CreateApiKeyBody(name="hooked", permissions=[])))
    wait_for(lambda: len(stack.seen.deliveries) > before, what="a key.created delivery")
    body, pairs = stack.seen.deliveries[before]
    return body, dict(pairs)


def test_webhook_deliveries_tampered_with_are_refused(stack: Stack) -> None:
    body, headers = _delivery(stack)
    event = verify_webhook(body, headers, stack.webhook_secret)
    assert isinstance(event, KeyCreated) and event.id == headers["webhook-id"]
    genuine = headers["webhook-signature"]
    assert genuine.startswith("v1,")
    mac = genuine.split(" ")[0][3:]
    t = int(headers["webhook-timestamp"])
    other = base64.b64encode(b"\0" * 32).decode()
    refused: dict[str, tuple[bytes, dict[str, str]]] = {
        "v1a with the genuine bytes": (body, {**headers, "webhook-signature": f"v1a,{mac}"}),
        "another secret's signature": (body, {**headers, "webhook-signature": f"v1,{other}"}),
        "truncated base64": (body, {**headers, "webhook-signature": f"v1,{mac[:-4]}"}),
        "base64 with bytes after": (body, {**headers, "webhook-signature": f"v1,{mac}AAAA"}),
        "unpadded base64": (body, {**headers, "webhook-signature": f"v1,{mac.rstrip('=')}"}),
        "comma-separated list": (body, {**headers, "webhook-signature": f"v1,{other},v1,{mac}"}),
        "old timestamp": (body, {**headers, "webhook-timestamp": str(t - 301)}),
        "future timestamp": (body, {**headers, "webhook-timestamp": str(t + 400)}),
        "another id (a replay as a new event)": (body, {**headers, "webhook-id": "msg_replayed"}),
        "body re-serialised by a framework": (json.dumps(json.loads(body), indent=1).encode(), headers),
        "body with a member added": (body[:-1] + b',"admin":true}', headers),
        "no signature": (body, {k: v for k, v in headers.items() if k != "webhook-signature"}),
    }
    for what, (b, h) in refused.items():
        with pytest.raises(WebhookVerificationError):
            verify_webhook(b, h, stack.webhook_secret)
            pytest.fail(what)
    # Several space-separated signatures: the genuine one among others verifies (the specification's rotation).
    assert (
        verify_webhook(
            body, {**headers, "webhook-signature": f"v1,{other} v1a,{mac} {genuine}"}, stack.webhook_secret
        ).id
        == event.id
    )
    # Header names in any case (a framework's mapping) read the same.
    assert verify_webhook(body, {k.upper(): v for k, v in headers.items()}, stack.webhook_secret).id == event.id
    # The same delivery again verifies: keygate delivers at least once, so receivers dedupe on event.id
    # (docs/python.md); what it carries cannot change without breaking the signature.
    assert verify_webhook(body, headers, stack.webhook_secret).id == event.id
