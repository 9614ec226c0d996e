"""keygate_sdk.django.KeygateMiddleware with Django's own test clients, sync (WSGI) and async (ASGI)."""

from __future__ import annotations

import django
import pytest
from django.conf import settings

SECRET = "django-signing-secret"
TENANT = "ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Y"
KEY = "key_01JZ8Q5A1B2C3D4E5F6G7H8J9K"

if not settings.configured:
    settings.configure(
        SECRET_KEY="django-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="tests.django_urls",
        MIDDLEWARE=["keygate_sdk.django.KeygateMiddleware"],
        KEYGATE_SIGNING_SECRET=SECRET,
        KEYGATE_BASE_PATH="",
        KEYGATE_EXEMPT_PATHS=["/healthz"],
    )
    django.setup()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402  (needs settings)
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402

from keygate_sdk import sign_identity  # noqa: E402
from keygate_sdk.django import KeygateMiddleware  # noqa: E402


def signed(path: str, method: str = "GET", secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Keygate-Signature": sign_identity(secret, method=method, path=path, tenant_id=TENANT, key_id=KEY),
        "X-Tenant-Id": TENANT,
        "X-Api-Key-Id": KEY,
        "X-Api-Key-Permissions": "calls:read",
    }


def test_signed_requests_reach_the_view_with_the_identity() -> None:
    res = Client().get("/api/v1/calls/7?x=1", headers=signed("/api/v1/calls/7"))
    assert res.status_code == 200
    assert res.json() == {"tenant": TENANT, "key": KEY, "permissions": ["calls:read"]}


def test_unsigned_tampered_or_replayed_requests_get_401() -> None:
    client = Client()
    cases = [
        {},
        signed("/api/v1/calls/8"),
        signed("/api/v1/calls/7", "POST"),
        signed("/api/v1/calls/7", secret="another-secret"),
        {**signed("/api/v1/calls/7"), "X-Tenant-Id": "ten_other"},
    ]
    for headers in cases:
        res = client.get("/api/v1/calls/7", headers=headers)
        assert res.status_code == 401, headers
        assert res["WWW-Authenticate"].startswith("KeygateSignature")
        assert res.json()["error"]["code"] == "invalid_signature"


def test_the_path_is_checked_as_received_when_the_server_gives_it() -> None:
    # gunicorn's RAW_URI: the escaped form keygate forwarded and signed.
    res = Client().get("/api/v1/calls/a%3Ab", headers=signed("/api/v1/calls/a%3Ab"), RAW_URI="/api/v1/calls/a%3Ab?q=1")
    assert res.status_code == 200
    res = Client().get("/api/v1/calls/a%3Ab", headers=signed("/api/v1/calls/a%3Ab"), RAW_URI="/api/v1/calls/a:b")
    assert res.status_code == 401


def test_exempt_paths_skip_the_check() -> None:
    assert Client().get("/healthz").status_code == 200


@override_settings(KEYGATE_BASE_PATH="/svc")
def test_base_path_removed_on_the_way() -> None:
    assert Client().get("/api/v1/calls/7", headers=signed("/svc/api/v1/calls/7")).status_code == 200
    assert Client().get("/api/v1/calls/7", headers=signed("/api/v1/calls/7")).status_code == 401


@pytest.mark.anyio
async def test_async_stack() -> None:
    client = AsyncClient()
    res = await client.get("/api/v1/async", headers=signed("/api/v1/async"))
    assert res.status_code == 200
    assert res.json() == {"tenant": TENANT}
    assert (await client.get("/api/v1/async")).status_code == 401


def test_missing_or_empty_secret_is_a_configuration_error() -> None:
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    for secret in (None, ""):
        with override_settings(KEYGATE_SIGNING_SECRET=secret), pytest.raises(ImproperlyConfigured):
            KeygateMiddleware(view)
    with override_settings(KEYGATE_BASE_PATH="svc"), pytest.raises(ImproperlyConfigured):
        KeygateMiddleware(view)
