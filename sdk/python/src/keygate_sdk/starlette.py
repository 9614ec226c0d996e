"""ASGI middleware (Starlette, FastAPI, any ASGI app): only requests keygate signed reach the app.

    from fastapi import Depends, FastAPI
    from keygate_sdk import Identity
    from keygate_sdk.starlette import KeygateMiddleware, keygate_identity

    app = FastAPI()
    app.add_middleware(KeygateMiddleware, secret=os.environ["KEYGATE_SIGNING_SECRET"])

    @app.get("/v1/calls/{call_id}")
    def get_call(call_id: str, who: Identity = Depends(keygate_identity)) -> dict[str, str]:
        return {"tenant": who.tenant_id}

HTTP requests and WebSocket handshakes without a valid signature are refused before the app sees them: HTTP
with 401 and a JSON error envelope, a WebSocket handshake by closing it (1008; the server answers the upgrade
with 403). The identity is put in the request's state (`request.state.keygate`, read with `keygate_identity`).
The path checked is the one received on the wire (`raw_path`), so the app's own routing (mounts, root_path)
does not change what is verified.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any
from urllib.parse import quote

from starlette.requests import HTTPConnection

from .identity import (
    DEFAULT_TOLERANCE_SECONDS,
    Identity,
    IdentityVerificationError,
    normalize_base_path,
    secret_bytes,
    verify_identity,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY = "keygate"

# RFC 3986 pchar without '%': what a path holds unescaped. Used only when the server gives no raw_path.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def wire_path(scope: Scope) -> str:
    """The request path as received: `raw_path` (bytes on the wire), else root_path + path escaped again."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        return raw.decode("latin-1").split("?", 1)[0]
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and not path.startswith(root):
        path = root + path
    return quote(path, safe=_PATH_SAFE)


class KeygateMiddleware:
    """Refuses HTTP requests and WebSocket handshakes that keygate did not sign; sets `state.keygate`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: str | bytes,
        base_path: str = "",
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        exempt_paths: Collection[str] = (),
    ) -> None:
        """`exempt_paths`: exact paths that skip the check (a probe that does not come through keygate)."""
        secret_bytes(secret)
        self.app = app
        self._secret = secret
        self._base_path = normalize_base_path(base_path)
        self._tolerance = tolerance_seconds
        self._exempt = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = wire_path(scope)
        if path in self._exempt:
            await self.app(scope, receive, send)
            return
        try:
            identity = verify_identity(
                scope.get("headers", []),
                self._secret,
                # keygate signs a WebSocket upgrade as the GET it is.
                method=scope.get("method", "GET"),
                path=path,
                base_path=self._base_path,
                tolerance_seconds=self._tolerance,
            )
        except IdentityVerificationError as err:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "invalid_signature"})
            else:
                await _refuse(send, err)
            return
        scope.setdefault("state", {})[STATE_KEY] = identity
        await self.app(scope, receive, send)


async def _refuse(send: Send, err: IdentityVerificationError) -> None:
    body = json.dumps({"error": {"code": "invalid_signature", "reason": err.reason, "message": str(err)}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'KeygateSignature realm="keygate"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def keygate_identity(conn: HTTPConnection) -> Identity:
    """The identity KeygateMiddleware verified; a FastAPI dependency too (`Depends(keygate_identity)`)."""
    identity = conn.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(identity, Identity):
        raise RuntimeError("no keygate identity on this request: is KeygateMiddleware installed?")
    return identity
