"""keygate for Python backends.

- `verify_identity`: check keygate's X-Keygate-Signature and read the identity it vouches for; middleware for
  ASGI apps (keygate_sdk.starlette: Starlette, FastAPI) and Django (keygate_sdk.django).
- `verify_webhook`: verify a webhook delivery (Standard Webhooks) and read its typed event (keygate_sdk.events).
- keygate_sdk.client: typed clients of the admin and self-service APIs, sync and async, generated from keygate's
  OpenAPI document (keygate_sdk.openapi_client).
"""

from importlib.metadata import PackageNotFoundError, version

from .client import KeygateApiError, admin_client, self_service_client, unwrap
from .events import (
    InvalidWebhookEvent,
    KeyCreated,
    KeyExpired,
    KeyExpiring,
    KeyRevoked,
    KeyRotated,
    KeyUpdated,
    LimitsBlocked,
    QuotaThreshold,
    UnknownEvent,
    WebhookDisabled,
    WebhookEvent,
    parse_event,
)
from .identity import FailureReason, Identity, IdentityVerificationError, sign_identity, verify_identity
from .webhooks import WebhookVerificationError, verify_webhook

try:
    __version__ = version("keygate-sdk")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "FailureReason",
    "Identity",
    "IdentityVerificationError",
    "InvalidWebhookEvent",
    "KeyCreated",
    "KeyExpired",
    "KeyExpiring",
    "KeyRevoked",
    "KeyRotated",
    "KeyUpdated",
    "KeygateApiError",
    "LimitsBlocked",
    "QuotaThreshold",
    "UnknownEvent",
    "WebhookDisabled",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
    "admin_client",
    "parse_event",
    "self_service_client",
    "sign_identity",
    "unwrap",
    "verify_identity",
    "verify_webhook",
]
