"""The backend the end-to-end tests put behind keygate: a FastAPI voice backend mounted under /api.

Calls and a voice WebSocket under /api/v1 (keygate's upstream URL is `<app>/api`), a webhook receiver at
/hooks/keygate (deliveries come from keygate's webhook worker, not through its proxy: exempt from the identity
check, verified by their own signature) and a probe at /healthz (exempt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response, WebSocket

from keygate_sdk import Identity, InvalidWebhookEvent, WebhookEvent, WebhookVerificationError, verify_webhook
from keygate_sdk.starlette import KeygateMiddleware, keygate_identity

# At module level: FastAPI resolves the (string) annotations of handlers in the module's namespace.
Who = Annotated[Identity, Depends(keygate_identity)]


@dataclass
class Seen:
    """What reached the app's handlers."""

    identities: list[Identity] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    events: list[WebhookEvent] = field(default_factory=list)
    refused_deliveries: int = 0
    webhook_secrets: list[str] = field(default_factory=list)


def create_app(signing_secret: str) -> tuple[FastAPI, Seen]:
    seen = Seen()
    app = FastAPI()
    app.add_middleware(KeygateMiddleware, secret=signing_secret, exempt_paths={"/hooks/keygate", "/healthz"})
    api = APIRouter(prefix="/api")

    @api.get("/v1/calls/{call_id}")
    def get_call(call_id: str, request: Request, identity: Who) -> dict[str, str]:
        seen.identities.append(identity)
        seen.headers.append(dict(request.headers))
        return {"call": call_id, "tenant": identity.tenant_id, "key": identity.key_id}

    @api.post("/v1/calls")
    async def create_call(request: Request, identity: Who) -> dict[str, str]:
        seen.identities.append(identity)
        body = await request.body()
        return {"tenant": identity.tenant_id, "body": body.decode()}

    @api.websocket("/v1/voice/{assistant_id}/stream")
    async def voice(ws: WebSocket, assistant_id: str) -> None:
        identity = keygate_identity(ws)
        await ws.accept()
        await ws.send_json({"assistant": assistant_id, "tenant": identity.tenant_id, "key": identity.key_id})
        await ws.close()

    app.include_router(api)

    @app.post("/hooks/keygate")
    async def hook(request: Request) -> Response:
        body = await request.body()
        for secret in seen.webhook_secrets:
            try:
                seen.events.append(verify_webhook(body, request.headers, secret))
                return Response(status_code=204)
            except (WebhookVerificationError, InvalidWebhookEvent):
                continue
        seen.refused_deliveries += 1
        return Response(status_code=400)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app, seen
