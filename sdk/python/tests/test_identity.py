"""verify_identity beyond the shared vectors: header forms Python servers hand over, and configuration errors."""

from __future__ import annotations

import time

import pytest

from keygate_sdk import Identity, IdentityVerificationError, sign_identity, verify_identity

SECRET = "unit-signing-secret"
TENANT = "ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Y"
KEY = "key_01JZ8Q5A1B2C3D4E5F6G7H8J9K"


def signed_headers(path: str = "/v1/calls", method: str = "GET", now: int | None = None) -> dict[str, str]:
    return {
        "X-Keygate-Signature": sign_identity(SECRET, method=method, path=path, tenant_id=TENANT, key_id=KEY, now=now),
        "X-Tenant-Id": TENANT,
        "X-Api-Key-Id": KEY,
        "X-Api-Key-Type": "public",
        "X-Api-Key-Permissions": "calls:read,voice:connect",
        "X-Request-Id": "req_1",
    }


def test_what_sign_identity_makes_verifies_now_and_gives_the_identity() -> None:
    identity = verify_identity(signed_headers(), SECRET, method="GET", path="/v1/calls")
    assert identity == Identity(TENANT, KEY, identity.signed_at, "public", ("calls:read", "voice:connect"), "req_1")
    assert abs(identity.signed_at - time.time()) < 5


def test_header_names_in_any_case_as_a_mapping_or_as_str_or_bytes_pairs() -> None:
    headers = signed_headers()
    as_bytes = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    upper = {k.upper(): v for k, v in headers.items()}
    for form in (headers, upper, as_bytes, list(headers.items())):
        assert verify_identity(form, SECRET, method="GET", path="/v1/calls").tenant_id == TENANT


@pytest.mark.parametrize("name", ["X-Keygate-Signature", "X-Tenant-Id", "X-Api-Key-Id"])
def test_a_signed_header_sent_twice_never_verifies(name: str) -> None:
    headers = signed_headers()
    pairs = [*headers.items(), (name, headers[name])]
    with pytest.raises(IdentityVerificationError) as err:
        verify_identity(pairs, SECRET, method="GET", path="/v1/calls")
    assert err.value.reason in ("malformed", "mismatch")


@pytest.mark.parametrize("name", ["X-Tenant-Id", "X-Api-Key-Id", "X-Keygate-Signature"])
def test_a_missing_signed_header_is_missing(name: str) -> None:
    headers = {k: v for k, v in signed_headers().items() if k != name}
    with pytest.raises(IdentityVerificationError) as err:
        verify_identity(headers, SECRET, method="GET", path="/v1/calls")
    assert err.value.reason == "missing"


def test_the_unsigned_fields_are_read_as_sent() -> None:
    headers = {
        k: v
        for k, v in signed_headers().items()
        if k not in ("X-Api-Key-Type", "X-Api-Key-Permissions", "X-Request-Id")
    }
    identity = verify_identity(headers, SECRET, method="GET", path="/v1/calls")
    assert (identity.key_type, identity.permissions, identity.request_id) == (None, (), None)


def test_an_empty_secret_or_a_bad_base_path_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        verify_identity(signed_headers(), "", method="GET", path="/v1/calls")
    with pytest.raises(ValueError, match="empty"):
        sign_identity(b"", method="GET", path="/", tenant_id=TENANT, key_id=KEY)
    for base in ("api", "/api?x", "/api#x"):
        with pytest.raises(ValueError, match="base_path"):
            verify_identity(signed_headers(), SECRET, method="GET", path="/v1/calls", base_path=base)


def test_base_path_with_a_trailing_slash_is_the_same_prefix() -> None:
    headers = signed_headers(path="/api/v1/calls")
    for base in ("/api", "/api/"):
        assert verify_identity(headers, SECRET, method="GET", path="/v1/calls", base_path=base).key_id == KEY
    assert verify_identity(signed_headers(), SECRET, method="GET", path="/v1/calls", base_path="/").key_id == KEY


def test_tolerance_is_configurable() -> None:
    now = int(time.time())
    old = signed_headers(now=now - 100)
    assert verify_identity(old, SECRET, method="GET", path="/v1/calls").key_id == KEY
    with pytest.raises(IdentityVerificationError) as err:
        verify_identity(old, SECRET, method="GET", path="/v1/calls", tolerance_seconds=60)
    assert err.value.reason == "stale"


def test_a_session_tokens_id_and_metadata_are_read_as_sent() -> None:
    headers = {
        **signed_headers(),
        "X-Api-Key-Type": "session",
        "X-Session-Token-Id": "tok_1",
        "X-Session-Token-Metadata": '{"userId":"u_1"}',
    }
    identity = verify_identity(headers, SECRET, method="GET", path="/v1/calls")
    assert (identity.key_type, identity.session_token_id, identity.session_metadata) == (
        "session",
        "tok_1",
        {"userId": "u_1"},
    )
    for bad in ("not json", "[1]", '"text"'):
        headers["X-Session-Token-Metadata"] = bad
        assert verify_identity(headers, SECRET, method="GET", path="/v1/calls").session_metadata is None
    assert verify_identity(signed_headers(), SECRET, method="GET", path="/v1/calls").session_token_id is None
