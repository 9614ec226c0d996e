"""docs/python.md's FastAPI backend, run as written behind a real keygate (embedded store)."""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from keygate_sdk import unwrap
from keygate_sdk.client import admin_client, self_service_client
from keygate_sdk.openapi_client.api.admin import (
    admin_create_tenant,
    admin_create_webhook_endpoint,
    admin_list_webhook_deliveries,
)
from keygate_sdk.openapi_client.api.self_service import create_api_key, revoke_api_key
from keygate_sdk.openapi_client.models import AdminCreateTenantBody, AdminCreateWebhookEndpointBody, CreateApiKeyBody

from .processes import ADMIN_TOKEN, FAST_WEBHOOKS, REPO, keygate, serve_asgi, wait_for

SECRET = "docs-signing-secret-0123456789"


def guide_app(webhook_secret: str) -> types.ModuleType:
    text = (REPO / "docs" / "python.md").read_text()
    section = text.split("## A FastAPI voice backend behind keygate", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    module = types.ModuleType("keygate_docs_app")
    sys.modules[module.__name__] = module
    os.environ["KEYGATE_SIGNING_SECRET"] = SECRET
    os.environ["KEYGATE_WEBHOOK_SECRET"] = webhook_secret
    exec(compile(match.group(1), "docs/python.md", "exec"), module.__dict__)  # noqa: S102 (the guide's own code)
    return module


@pytest.fixture
def clean_env() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    sys.modules.pop("keygate_docs_app", None)


def test_the_guides_backend_behind_keygate(clean_env: None) -> None:
    # The webhook secret is known only once the endpoint exists, and the endpoint needs the app's URL: the app
    # reads its secret from the environment per delivery, so it is set after the app started.
    app = guide_app("whsec_cGxhY2Vob2xkZXI=").app
    with (
        serve_asgi(app) as app_url,
        keygate(upstream=app_url, config={"webhooks": FAST_WEBHOOKS}, env={"KEYGATE_SIGNING_SECRET": SECRET}) as kg,
    ):
        with admin_client(kg.ops_url, ADMIN_TOKEN) as admin:
            acme = unwrap(admin_create_tenant.sync_detailed(client=admin, body=AdminCreateTenantBody(name="Acme")))
            body = AdminCreateWebhookEndpointBody(url=f"{app_url}/hooks/keygate", events=["key.revoked"])
            endpoint = unwrap(admin_create_webhook_endpoint.sync_detailed(client=admin, body=body))
        os.environ["KEYGATE_WEBHOOK_SECRET"] = endpoint.secret
        key = {"X-API-Key": acme.api_key.key}

        res = httpx.get(f"{kg.url}/v1/calls/7", headers=key)
        assert (res.status_code, res.json()) == (200, {"call": "7", "tenant": acme.tenant.id})
        assert httpx.get(f"{app_url}/v1/calls/7").status_code == 401
        with connect(f"{kg.url.replace('http', 'ws')}/v1/voice/asst_1/stream", additional_headers=key) as ws:
            assert ws.recv(timeout=10) == f'{{"assistant":"asst_1","tenant":"{acme.tenant.id}"}}'

        with self_service_client(kg.url, acme.api_key.key) as tenant:
            made = unwrap(
                create_api_key.sync_detailed(client=tenant, body=CreateApiKeyBody(permissions=["calls:read"]))
            )
            unwrap(revoke_api_key.sync_detailed(made.id, client=tenant))

        def delivered() -> bool:
            with admin_client(kg.ops_url, ADMIN_TOKEN) as admin:
                log = unwrap(admin_list_webhook_deliveries.sync_detailed(endpoint.id, client=admin))
            return any(d.status == 204 for d in log.data)

        wait_for(delivered, what="a key.revoked delivery answered 204 by the guide's receiver")
