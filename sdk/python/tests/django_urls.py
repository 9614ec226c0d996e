"""The URLconf of the Django middleware tests."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from keygate_sdk.django import keygate_identity


def whoami(request: HttpRequest, call_id: str) -> JsonResponse:
    who = keygate_identity(request)
    return JsonResponse({"tenant": who.tenant_id, "key": who.key_id, "permissions": list(who.permissions)})


async def awhoami(request: HttpRequest) -> JsonResponse:
    who = keygate_identity(request)
    return JsonResponse({"tenant": who.tenant_id})


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("api/v1/calls/<str:call_id>", whoami),
    path("api/v1/async", awhoami),
    path("healthz", healthz),
]
