"""keygate's webhook events as typed values.

A delivery's body is `{"type", "timestamp", "data"}`; its `webhook-id` header is the event's id (the same on
every retry and duplicate: dedupe on it). Each known type becomes its own frozen dataclass, so a receiver can
`match` on the class; a type this package does not know yet becomes UnknownEvent (keygate may add types; an
older receiver keeps working). A known type whose data does not have the documented shape raises
InvalidWebhookEvent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias


class InvalidWebhookEvent(ValueError):
    """A verified delivery whose body is not the event it says it is (`path` names the field)."""

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"webhook event: {path} should be {expected}")
        self.path = path


@dataclass(frozen=True, slots=True)
class _Event:
    id: str
    """The `webhook-id`: the same for every delivery of one event."""
    timestamp: datetime
    """When the event happened (the body's `timestamp`)."""


@dataclass(frozen=True, slots=True)
class KeyCreated(_Event):
    type: ClassVar[Literal["key.created"]] = "key.created"
    tenant_id: str
    key_id: str
    actor: str
    """The key id that acted, or `admin`."""
    name: str | None
    key_type: str
    permissions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeyUpdated(_Event):
    type: ClassVar[Literal["key.updated"]] = "key.updated"
    tenant_id: str
    key_id: str
    actor: str
    fields: tuple[str, ...]
    """The names of the fields the update set."""


@dataclass(frozen=True, slots=True)
class KeyRotated(_Event):
    type: ClassVar[Literal["key.rotated"]] = "key.rotated"
    tenant_id: str
    key_id: str
    actor: str
    grace_period_seconds: int


@dataclass(frozen=True, slots=True)
class KeyRevoked(_Event):
    type: ClassVar[Literal["key.revoked"]] = "key.revoked"
    tenant_id: str
    key_id: str
    actor: str
    reason: str | None
    """`tenant_deleted` when its tenant was deleted; None for a revocation of the key itself."""


@dataclass(frozen=True, slots=True)
class KeyExpiring(_Event):
    type: ClassVar[Literal["key.expiring"]] = "key.expiring"
    tenant_id: str
    key_id: str
    name: str | None
    expires_at: datetime
    days: int
    """7 or 1: the warning this is."""


@dataclass(frozen=True, slots=True)
class KeyExpired(_Event):
    type: ClassVar[Literal["key.expired"]] = "key.expired"
    tenant_id: str
    key_id: str
    name: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class QuotaThreshold(_Event):
    type: ClassVar[Literal["quota.threshold"]] = "quota.threshold"
    tenant_id: str
    key_id: str | None
    """The key whose own quota it is; None for the tenant's plan-wide quota."""
    quota: str
    """`requestsPerMonth` or `sessionMinutesPerMonth`."""
    threshold: int
    """80 or 100 (percent)."""
    limit: float
    """In the quota's unit: requests, or minutes (session minutes may have a fraction)."""
    used: float
    period: str
    """The calendar month (UTC), YYYY-MM."""


@dataclass(frozen=True, slots=True)
class LimitsBlocked(_Event):
    """An address blocked after failed authentication attempts (the platform's endpoints only)."""

    type: ClassVar[Literal["limits.blocked"]] = "limits.blocked"
    ip: str
    """An IPv4 address or an IPv6 /64."""
    failures: int
    window_seconds: int
    block_seconds: int
    blocked_until: datetime
    suppressed: int
    """How many blocks were not announced before this one (at most 60 a minute per replica are)."""


@dataclass(frozen=True, slots=True)
class WebhookDisabled(_Event):
    type: ClassVar[Literal["webhook.disabled"]] = "webhook.disabled"
    tenant_id: str | None
    """The endpoint's tenant; None for a platform endpoint."""
    endpoint_id: str
    url: str
    failing_since: datetime
    disabled_at: datetime


@dataclass(frozen=True, slots=True)
class UnknownEvent(_Event):
    """An event type this version of the package does not know; its data as sent."""

    type: str
    data: Mapping[str, Any]


WebhookEvent: TypeAlias = (
    KeyCreated
    | KeyUpdated
    | KeyRotated
    | KeyRevoked
    | KeyExpiring
    | KeyExpired
    | QuotaThreshold
    | LimitsBlocked
    | WebhookDisabled
    | UnknownEvent
)


class _Data:
    """Typed reads of an event's `data`, each failing with the field's path."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._d = data

    def _get(self, name: str, kinds: type | tuple[type, ...], expected: str, optional: bool = False) -> Any:
        if name not in self._d:
            if optional:
                return None
            raise InvalidWebhookEvent(f"data.{name}", expected)
        value = self._d[name]
        if (value is None and optional) or (isinstance(value, kinds) and not isinstance(value, bool)):
            return value
        raise InvalidWebhookEvent(f"data.{name}", expected)

    def text(self, name: str) -> str:
        value: str = self._get(name, str, "a string")
        return value

    def opt_text(self, name: str) -> str | None:
        value: str | None = self._get(name, str, "a string or null", optional=True)
        return value

    def integer(self, name: str) -> int:
        value: int = self._get(name, int, "an integer")
        return value

    def number(self, name: str) -> float:
        value: float = self._get(name, (int, float), "a number")
        return value

    def time(self, name: str) -> datetime:
        return _parse_time(self.text(name), f"data.{name}")

    def texts(self, name: str) -> tuple[str, ...]:
        value = self._get(name, list, "a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise InvalidWebhookEvent(f"data.{name}", "a list of strings")
        return tuple(value)


def _parse_time(value: str, path: str) -> datetime:
    try:
        # keygate writes ISO 8601 in UTC with a Z (toISOString); fromisoformat reads a Z only from Python 3.11.
        return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise InvalidWebhookEvent(path, "an ISO 8601 time") from None


def parse_event(webhook_id: str, body: Mapping[str, Any]) -> WebhookEvent:
    """The typed event of a delivery's parsed body (verify the delivery first: see keygate_sdk.webhooks)."""
    kind = body.get("type")
    raw_time = body.get("timestamp")
    data = body.get("data")
    if not isinstance(kind, str):
        raise InvalidWebhookEvent("type", "a string")
    if not isinstance(raw_time, str):
        raise InvalidWebhookEvent("timestamp", "an ISO 8601 time")
    if not isinstance(data, Mapping):
        raise InvalidWebhookEvent("data", "an object")
    at = _parse_time(raw_time, "timestamp")
    d = _Data(data)
    if kind == "key.created":
        return KeyCreated(
            webhook_id,
            at,
            d.text("tenantId"),
            d.text("keyId"),
            d.text("actor"),
            d.opt_text("name"),
            d.text("keyType"),
            d.texts("permissions"),
        )
    if kind == "key.updated":
        return KeyUpdated(webhook_id, at, d.text("tenantId"), d.text("keyId"), d.text("actor"), d.texts("fields"))
    if kind == "key.rotated":
        return KeyRotated(
            webhook_id, at, d.text("tenantId"), d.text("keyId"), d.text("actor"), d.integer("gracePeriodSeconds")
        )
    if kind == "key.revoked":
        return KeyRevoked(webhook_id, at, d.text("tenantId"), d.text("keyId"), d.text("actor"), d.opt_text("reason"))
    if kind == "key.expiring":
        return KeyExpiring(
            webhook_id,
            at,
            d.text("tenantId"),
            d.text("keyId"),
            d.opt_text("name"),
            d.time("expiresAt"),
            d.integer("days"),
        )
    if kind == "key.expired":
        return KeyExpired(webhook_id, at, d.text("tenantId"), d.text("keyId"), d.opt_text("name"), d.time("expiresAt"))
    if kind == "quota.threshold":
        return QuotaThreshold(
            webhook_id,
            at,
            d.text("tenantId"),
            d.opt_text("keyId"),
            d.text("quota"),
            d.integer("threshold"),
            d.number("limit"),
            d.number("used"),
            d.text("period"),
        )
    if kind == "limits.blocked":
        return LimitsBlocked(
            webhook_id,
            at,
            d.text("ip"),
            d.integer("failures"),
            d.integer("windowSeconds"),
            d.integer("blockSeconds"),
            d.time("blockedUntil"),
            d.integer("suppressed"),
        )
    if kind == "webhook.disabled":
        return WebhookDisabled(
            webhook_id,
            at,
            d.opt_text("tenantId"),
            d.text("endpointId"),
            d.text("url"),
            d.time("failingSince"),
            d.time("disabledAt"),
        )
    return UnknownEvent(webhook_id, at, kind, dict(data))
