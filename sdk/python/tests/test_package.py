"""The package as shipped: versioned with keygate, typed, and its generated client in step with the document."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import files, version
from pathlib import Path

import keygate_sdk

from .processes import REPO, node

SDK = Path(__file__).resolve().parent.parent


def test_version_is_keygates() -> None:
    package_json = json.loads((REPO / "package.json").read_text())
    assert version("keygate-sdk") == package_json["version"] == keygate_sdk.__version__


def test_installed_with_its_type_marker() -> None:
    shipped = {str(f) for f in files("keygate-sdk") or []}
    assert "keygate_sdk/py.typed" in shipped
    assert "keygate_sdk/openapi_client/client.py" in shipped


def test_the_committed_client_is_what_the_openapi_document_generates() -> None:
    node()  # fails with what to install, rather than a generator error
    out = subprocess.run(
        [sys.executable, str(SDK / "scripts" / "generate_client.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr


def test_the_public_api() -> None:
    assert sorted(keygate_sdk.__all__) == sorted(
        [
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
    )
    for name in keygate_sdk.__all__:
        assert hasattr(keygate_sdk, name), name
