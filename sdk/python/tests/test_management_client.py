"""The generated client with its thin layer, against a real keygate (embedded store): sync and async, both APIs,
and keygate's errors as KeygateApiError."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keygate_sdk import KeygateApiError, unwrap
from keygate_sdk.client import admin_client, self_service_client
from keygate_sdk.openapi_client.api.admin import admin_create_tenant, admin_get_tenant, admin_list_api_keys
from keygate_sdk.openapi_client.api.self_service import (
    get_api_key,
    get_my_tenant,
    list_api_keys,
    rotate_api_key,
    update_api_key,
)
from keygate_sdk.openapi_client.models import AdminCreateTenantBody, RotateApiKeyBody, UpdateApiKeyBody

from .processes import ADMIN_TOKEN, Keygate, free_port, keygate


@pytest.fixture(scope="module")
def kg() -> Iterator[Keygate]:
    # No upstream is called here: a closed port.
    with keygate(upstream=f"http://127.0.0.1:{free_port()}") as running:
        yield running


def test_admin_and_self_service_sync(kg: Keygate) -> None:
    with admin_client(kg.ops_url, ADMIN_TOKEN) as admin:
        created = unwrap(
            admin_create_tenant.sync_detailed(client=admin, body=AdminCreateTenantBody(name="Acme", max_keys=5))
        )
        assert created.tenant.name == "Acme" and created.api_key.permissions == ["*"]
        assert unwrap(admin_get_tenant.sync_detailed(created.tenant.id, client=admin)).id == created.tenant.id
    with self_service_client(kg.url, created.api_key.key) as tenant:
        me = unwrap(get_my_tenant.sync_detailed(client=tenant))
        assert me.tenant.id == created.tenant.id
        updated = unwrap(update_api_key.sync_detailed("current", client=tenant, body=UpdateApiKeyBody(name="renamed")))
        assert updated.name == "renamed"
        rotated = unwrap(
            rotate_api_key.sync_detailed("current", client=tenant, body=RotateApiKeyBody(grace_period_seconds=0))
        )
        assert rotated.id == created.api_key.id and rotated.key != created.api_key.key
    # The old value stopped at once: keygate's 401 envelope, as an exception.
    with self_service_client(kg.url, created.api_key.key) as old, pytest.raises(KeygateApiError) as err:
        unwrap(get_my_tenant.sync_detailed(client=old))
    assert (err.value.status, err.value.code) == (401, "invalid_api_key")
    assert err.value.request_id


@pytest.mark.anyio
async def test_async(kg: Keygate) -> None:
    async with admin_client(kg.ops_url, ADMIN_TOKEN) as admin:
        created = unwrap(
            await admin_create_tenant.asyncio_detailed(client=admin, body=AdminCreateTenantBody(name="Async"))
        )
        keys = unwrap(await admin_list_api_keys.asyncio_detailed(created.tenant.id, client=admin))
        assert [k.id for k in keys.data] == [created.api_key.id]
    async with self_service_client(kg.url, created.api_key.key) as tenant:
        page = unwrap(await list_api_keys.asyncio_detailed(client=tenant, limit=10))
        assert [k.id for k in page.data] == [created.api_key.id]


def test_errors_carry_status_code_message_and_details(kg: Keygate) -> None:
    with admin_client(kg.ops_url, ADMIN_TOKEN) as admin:
        with pytest.raises(KeygateApiError) as err:
            unwrap(admin_get_tenant.sync_detailed("ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Y", client=admin))
        assert (err.value.status, err.value.code) == (404, "not_found")
        with pytest.raises(KeygateApiError) as err:
            unwrap(admin_create_tenant.sync_detailed(client=admin, body=AdminCreateTenantBody(name="x" * 101)))
        assert (err.value.status, err.value.code) == (400, "validation_error")
        assert [d["path"] for d in err.value.details] == ["name"]
    with admin_client(kg.ops_url, "not-the-admin-token") as wrong, pytest.raises(KeygateApiError) as err:
        unwrap(admin_get_tenant.sync_detailed("ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Y", client=wrong))
    assert err.value.status == 401
    with self_service_client(kg.url, "not-a-key") as nobody, pytest.raises(KeygateApiError) as err:
        unwrap(get_api_key.sync_detailed("current", client=nobody))
    assert (err.value.status, err.value.code) == (401, "invalid_api_key")


def test_an_answer_that_is_not_keygates_envelope_is_still_an_error() -> None:
    err = KeygateApiError.from_response(502, b"<html>Bad Gateway</html>")
    assert (err.status, err.code, err.message) == (502, "unexpected_response", "<html>Bad Gateway</html>")
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="upstream down"))
    with (
        self_service_client("http://keygate.invalid", "k", httpx_args={"transport": transport}) as client,
        pytest.raises(KeygateApiError) as caught,
    ):
        unwrap(get_my_tenant.sync_detailed(client=client))
    assert (caught.value.status, caught.value.code) == (502, "unexpected_response")


def test_the_document_keygate_serves_generates_the_committed_client(kg: Keygate) -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "generate_client.py"
    url = f"{kg.url}/keygate/v1/openapi.json"
    out = subprocess.run(
        [sys.executable, str(script), "--check", "--url", url], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
