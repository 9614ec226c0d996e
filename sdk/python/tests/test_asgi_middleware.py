"""KeygateMiddleware on an ASGI app (Starlette's TestClient drives it in process)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from keygate_sdk import sign_identity
from keygate_sdk.starlette import KeygateMiddleware, keygate_identity, wire_path

SECRET = "asgi-signing-secret"
TENANT = "ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Y"
KEY = "key_01JZ8Q5A1B2C3D4E5F6G7H8J9K"


def signed(path: str, method: str = "GET") -> dict[str, str]:
    sig = sign_identity(SECRET, method=method, path=path, tenant_id=TENANT, key_id=KEY)
    return {"x-keygate-signature": sig, "x-tenant-id": TENANT, "x-api-key-id": KEY, "x-api-key-type": "private"}


async def whoami(request: Request) -> JSONResponse:
    who = keygate_identity(request)
    return JSONResponse({"tenant": who.tenant_id, "path": request.url.path})


async def voice(ws: WebSocket) -> None:
    who = keygate_identity(ws)
    await ws.accept()
    await ws.send_json({"tenant": who.tenant_id})
    await ws.close()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


inner = Starlette(routes=[Route("/whoami", whoami, methods=["GET", "POST"])])
app = Starlette(routes=[Route("/healthz", health), WebSocketRoute("/voice", voice), Mount("/api", app=inner)])
app.add_middleware(KeygateMiddleware, secret=SECRET, exempt_paths={"/healthz"})
client = TestClient(app)


def test_signed_requests_pass_with_the_identity_on_the_request_even_in_a_mounted_app() -> None:
    res = client.get("/api/whoami?x=1", headers=signed("/api/whoami"))
    assert res.json() == {"tenant": TENANT, "path": "/api/whoami"}
    assert client.post("/api/whoami", headers=signed("/api/whoami", "POST")).status_code == 200


def test_unsigned_and_tampered_requests_get_401_before_the_app() -> None:
    for headers in (
        {},
        signed("/api/other"),
        signed("/api/whoami", "POST"),
        {**signed("/api/whoami"), "x-tenant-id": "ten_x"},
    ):
        res = client.get("/api/whoami", headers=headers)
        assert res.status_code == 401
        assert res.headers["www-authenticate"].startswith("KeygateSignature")
        assert res.json()["error"]["code"] == "invalid_signature"


def test_exempt_paths_skip_the_check_exactly() -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz/").status_code == 401


def test_websocket_handshakes_are_checked_as_the_get_keygate_signed() -> None:
    with client.websocket_connect("/voice", headers=signed("/voice")) as ws:
        assert ws.receive_json() == {"tenant": TENANT}
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/voice"):
        pass
    assert refused.value.code == 1008


def test_reading_the_identity_without_the_middleware_is_an_error() -> None:
    bare = TestClient(Starlette(routes=[Route("/whoami", whoami)]), raise_server_exceptions=True)
    with pytest.raises(RuntimeError, match="KeygateMiddleware"):
        bare.get("/whoami")


def test_an_empty_secret_fails_at_start() -> None:
    with pytest.raises(ValueError, match="empty"):
        KeygateMiddleware(inner, secret="")


def test_without_raw_path_the_path_is_root_path_and_path_escaped_again() -> None:
    assert wire_path({"raw_path": b"/api/v1/%63alls?x=1", "path": "/api/v1/calls"}) == "/api/v1/%63alls"
    assert wire_path({"path": "/v1/calls/a b", "root_path": "/api"}) == "/api/v1/calls/a%20b"
    assert wire_path({"path": "/api/v1/calls", "root_path": "/api"}) == "/api/v1/calls"
