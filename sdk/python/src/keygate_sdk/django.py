"""Django middleware: only requests keygate signed reach the views.

    # settings.py
    MIDDLEWARE = ["keygate_sdk.django.KeygateMiddleware", ...]   # first, before anything that reads the body
    KEYGATE_SIGNING_SECRET = os.environ["KEYGATE_SIGNING_SECRET"]
    KEYGATE_BASE_PATH = ""                  # a prefix removed between keygate and Django, if any
    KEYGATE_TOLERANCE_SECONDS = 300
    KEYGATE_EXEMPT_PATHS = ["/healthz"]     # exact paths that skip the check (probes not sent through keygate)

    # a view
    from keygate_sdk.django import keygate_identity
    def call(request): return JsonResponse({"tenant": keygate_identity(request).tenant_id})

A request without a valid signature gets 401 and a JSON error envelope. The identity is `request.keygate`.
The path checked is the one received on the wire where the server says it (ASGI `raw_path`, gunicorn's
RAW_URI, uWSGI's REQUEST_URI); otherwise Django's decoded path escaped again, which matches every path keygate
forwards except those keeping an escape of a reserved character (such a request is refused, never wrongly
accepted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.encoding import escape_uri_path

from .identity import (
    DEFAULT_TOLERANCE_SECONDS,
    Identity,
    IdentityVerificationError,
    normalize_base_path,
    secret_bytes,
    verify_identity,
)

ATTRIBUTE = "keygate"


def wire_path(request: HttpRequest) -> str:
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and isinstance(scope.get("raw_path"), bytes):
        return str(scope["raw_path"].decode("latin-1")).split("?", 1)[0]
    for name in ("RAW_URI", "REQUEST_URI"):
        raw = request.META.get(name)
        if isinstance(raw, str) and raw.startswith("/"):
            return raw.split("?", 1)[0]
    return escape_uri_path(request.path)


class KeygateMiddleware:
    """Refuses requests keygate did not sign; sets `request.keygate` (an Identity). Sync and async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        secret = getattr(settings, "KEYGATE_SIGNING_SECRET", None)
        if not isinstance(secret, (str, bytes)):
            raise ImproperlyConfigured("KEYGATE_SIGNING_SECRET must be set to keygate's upstream.signingSecret")
        try:
            secret_bytes(secret)
            self._base_path = normalize_base_path(getattr(settings, "KEYGATE_BASE_PATH", ""))
        except ValueError as err:
            raise ImproperlyConfigured(f"keygate: {err}") from err
        self._secret = secret
        self._tolerance = int(getattr(settings, "KEYGATE_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS))
        self._exempt = frozenset(getattr(settings, "KEYGATE_EXEMPT_PATHS", ()))
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self._async:
            return self._acall(request)
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        response: HttpResponseBase = self.get_response(request)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        response: HttpResponseBase = await self.get_response(request)
        return response

    def _check(self, request: HttpRequest) -> HttpResponseBase | None:
        path = wire_path(request)
        if path in self._exempt:
            return None
        try:
            identity = verify_identity(
                request.headers,
                self._secret,
                method=request.method or "GET",
                path=path,
                base_path=self._base_path,
                tolerance_seconds=self._tolerance,
            )
        except IdentityVerificationError as err:
            response = JsonResponse(
                {"error": {"code": "invalid_signature", "reason": err.reason, "message": str(err)}}, status=401
            )
            response["WWW-Authenticate"] = 'KeygateSignature realm="keygate"'
            return response
        setattr(request, ATTRIBUTE, identity)
        return None


def keygate_identity(request: HttpRequest) -> Identity:
    """The identity KeygateMiddleware verified for this request."""
    identity = getattr(request, ATTRIBUTE, None)
    if not isinstance(identity, Identity):
        raise RuntimeError("no keygate identity on this request: is KeygateMiddleware in MIDDLEWARE?")
    return identity
