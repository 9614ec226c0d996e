"""The identity keygate forwards with each request, and its signature (X-Keygate-Signature).

keygate (with `upstream.signingSecret`) sets

    X-Keygate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "t.METHOD.path.tenantId.keyId">

where `path` is what the backend receives: the upstream URL's own path, then the canonical request path, without
the query string. The check here is the one `keygate/verify` makes, on the same test vectors
(test/vectors/signatures.json): the header's exact form, the timestamp within `tolerance_seconds` either way
(clock skew), then the HMAC, compared in constant time.

Only the timestamp, method, path, tenant id and key id are signed. X-Api-Key-Type, X-Api-Key-Permissions and a
session token's X-Session-Token-Id and X-Session-Token-Metadata are passed on as keygate set them but are not
covered: they are as trustworthy as the network between keygate and the backend (a replayed signed request
could carry altered copies). Decide on the tenant and key id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

SIGNATURE_HEADER = "x-keygate-signature"
TENANT_HEADER = "x-tenant-id"
KEY_ID_HEADER = "x-api-key-id"
KEY_TYPE_HEADER = "x-api-key-type"
PERMISSIONS_HEADER = "x-api-key-permissions"
REQUEST_ID_HEADER = "x-request-id"
SESSION_TOKEN_ID_HEADER = "x-session-token-id"  # noqa: S105 (a header name, not a secret)
SESSION_TOKEN_METADATA_HEADER = "x-session-token-metadata"  # noqa: S105 (a header name)
_READ = (
    SIGNATURE_HEADER,
    TENANT_HEADER,
    KEY_ID_HEADER,
    KEY_TYPE_HEADER,
    PERMISSIONS_HEADER,
    REQUEST_ID_HEADER,
    SESSION_TOKEN_ID_HEADER,
    SESSION_TOKEN_METADATA_HEADER,
)

# As keygate/verify's: ASCII digits only (re.ASCII: Python's \d would take any Unicode digit) and nothing after
# the last hex digit (fullmatch: `$` would allow a trailing newline).
_FORM = re.compile(r"t=([0-9]{1,12}),v1=([0-9a-f]{64})", re.ASCII)

DEFAULT_TOLERANCE_SECONDS = 300

FailureReason: TypeAlias = Literal["missing", "malformed", "stale", "mismatch"]

HeaderValue: TypeAlias = str | bytes
Headers: TypeAlias = Mapping[str, str] | Iterable[tuple[HeaderValue, HeaderValue]]
"""A mapping (names in any case), or (name, value) pairs as str or latin-1 bytes (ASGI's raw headers)."""


class IdentityVerificationError(Exception):
    """The request does not carry a valid keygate signature; `reason` says why (as keygate/verify's)."""

    def __init__(self, reason: FailureReason) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason: FailureReason = reason


_MESSAGES: dict[FailureReason, str] = {
    "missing": "the request carries no X-Keygate-Signature, or no X-Tenant-Id / X-Api-Key-Id",
    "malformed": "X-Keygate-Signature is not of the form t=<unix seconds>,v1=<64 lower-case hex digits>",
    "stale": "X-Keygate-Signature was made outside the accepted clock difference",
    "mismatch": "X-Keygate-Signature does not match this request",
}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who keygate let through: the tenant and key (signed), and what keygate said of the key (not signed)."""

    tenant_id: str
    key_id: str
    signed_at: int
    """When keygate signed the request (unix seconds)."""
    key_type: str | None
    """`private`, `public` (or `session` for a session token): X-Api-Key-Type, not covered by the signature."""
    permissions: tuple[str, ...]
    """X-Api-Key-Permissions, not covered by the signature."""
    request_id: str | None
    """X-Request-Id: the client's own when it sent a well-formed one, else keygate's; not signed, not unique
    across tenants (scope any idempotency record by tenant and key)."""
    session_token_id: str | None = None
    """For a request made with a session token (`key_type` `session`; `key_id` is the minting key): its id.
    X-Session-Token-Id, not covered by the signature."""
    session_metadata: Mapping[str, Any] | None = None
    """The session token's metadata (X-Session-Token-Metadata, a JSON object), not covered by the signature."""


def normalize_base_path(base_path: str) -> str:
    """'' for no prefix; otherwise `/prefix` without a trailing slash (as keygate reads `upstream.url`)."""
    if base_path in ("", "/"):
        return ""
    if not base_path.startswith("/") or "?" in base_path or "#" in base_path:
        raise ValueError(f"base_path must be a path starting with / (got {base_path!r})")
    return base_path[:-1] if base_path.endswith("/") else base_path


def secret_bytes(secret: str | bytes) -> bytes:
    """The HMAC key: a str as UTF-8 (as Node reads a string key). An empty secret would let anyone sign."""
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def _text(value: HeaderValue) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _identity_fields(headers: Headers) -> dict[str, str]:
    """The identity headers, lower-cased; copies of one field joined with ', ' as Node does (so they never verify)."""
    found: dict[str, list[str]] = {}
    pairs: Iterable[tuple[HeaderValue, HeaderValue]] = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        lower = _text(name).lower()
        if lower in _READ:
            found.setdefault(lower, []).append(_text(value))
    return {name: ", ".join(values) for name, values in found.items()}


def signature_payload(t: int, method: str, path: str, tenant_id: str, key_id: str) -> bytes:
    return f"{t}.{method.upper()}.{path}.{tenant_id}.{key_id}".encode()


def sign_identity(
    secret: str | bytes, *, method: str, path: str, tenant_id: str, key_id: str, now: int | None = None
) -> str:
    """The X-Keygate-Signature keygate would send: for tests of a backend without a keygate in front."""
    t = int(time.time()) if now is None else now
    mac = hmac.new(
        secret_bytes(secret), signature_payload(t, method, path, tenant_id, key_id), hashlib.sha256
    ).hexdigest()
    return f"t={t},v1={mac}"


def verify_identity(
    headers: Headers,
    secret: str | bytes,
    *,
    method: str,
    path: str,
    base_path: str = "",
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> Identity:
    """Checks keygate's signature on a request and returns the identity it vouches for.

    `method` and `path` are the request as this backend received it, the path exactly as it arrived (not decoded,
    without the query string). `base_path` is a prefix that something between keygate and this backend removed
    from the path (keygate signs the path it sends, the upstream URL's own path included). Raises
    IdentityVerificationError.
    """
    key = secret_bytes(secret)
    fields = _identity_fields(headers)
    header = fields.get(SIGNATURE_HEADER, "")
    tenant_id = fields.get(TENANT_HEADER)
    key_id = fields.get(KEY_ID_HEADER)
    if header == "" or tenant_id is None or key_id is None:
        raise IdentityVerificationError("missing")
    m = _FORM.fullmatch(header)
    if m is None:
        raise IdentityVerificationError("malformed")
    t = int(m.group(1))
    current = int(time.time() if now is None else now)
    if abs(current - t) > tolerance_seconds:
        raise IdentityVerificationError("stale")
    payload = signature_payload(t, method, normalize_base_path(base_path) + path, tenant_id, key_id)
    expected = hmac.new(key, payload, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, m.group(2)):
        raise IdentityVerificationError("mismatch")
    permissions = fields.get(PERMISSIONS_HEADER, "")
    return Identity(
        tenant_id=tenant_id,
        key_id=key_id,
        signed_at=t,
        key_type=fields.get(KEY_TYPE_HEADER),
        permissions=tuple(p for p in permissions.split(",") if p),
        request_id=fields.get(REQUEST_ID_HEADER),
        session_token_id=fields.get(SESSION_TOKEN_ID_HEADER),
        session_metadata=_json_object(fields.get(SESSION_TOKEN_METADATA_HEADER)),
    )


def _json_object(value: str | None) -> Mapping[str, Any] | None:
    """A JSON object header; anything else (absent, malformed, another JSON type) is None."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
