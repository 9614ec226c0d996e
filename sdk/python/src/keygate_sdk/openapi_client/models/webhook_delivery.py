from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.webhook_delivery_outcome import WebhookDeliveryOutcome, check_webhook_delivery_outcome

T = TypeVar("T", bound="WebhookDelivery")


@_attrs_define
class WebhookDelivery:
    """
    Attributes:
        event_id (str): The `webhook-id` sent
        event_type (str):
        attempt (int):
        status (int | None): HTTP status, or null when no answer came
        ok (bool):
        latency_ms (float):
        error (None | str): Why no answer came, one of: `blocked: the address is not allowed`, `refused: …`,
            `unresolved: …`, `unreachable: …`, `timeout: …`, `reset: …`, `tls: …`, `error: the delivery failed` (never an
            address or what a name resolves to); `endpoint disabled`, `endpoint deleted`
        at (str):
        outcome (WebhookDeliveryOutcome):
        next_attempt_at (None | str):
    """

    event_id: str
    event_type: str
    attempt: int
    status: int | None
    ok: bool
    latency_ms: float
    error: str | None
    at: str
    outcome: WebhookDeliveryOutcome
    next_attempt_at: str | None

    def to_dict(self) -> dict[str, Any]:
        event_id = self.event_id

        event_type = self.event_type

        attempt = self.attempt

        status: int | None
        status = self.status

        ok = self.ok

        latency_ms = self.latency_ms

        error: str | None
        error = self.error

        at = self.at

        outcome: str = self.outcome

        next_attempt_at: str | None
        next_attempt_at = self.next_attempt_at

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "eventId": event_id,
                "eventType": event_type,
                "attempt": attempt,
                "status": status,
                "ok": ok,
                "latencyMs": latency_ms,
                "error": error,
                "at": at,
                "outcome": outcome,
                "nextAttemptAt": next_attempt_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        event_id = d.pop("eventId")

        event_type = d.pop("eventType")

        attempt = d.pop("attempt")

        def _parse_status(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        status = _parse_status(d.pop("status"))

        ok = d.pop("ok")

        latency_ms = d.pop("latencyMs")

        def _parse_error(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        error = _parse_error(d.pop("error"))

        at = d.pop("at")

        outcome = check_webhook_delivery_outcome(d.pop("outcome"))

        def _parse_next_attempt_at(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        next_attempt_at = _parse_next_attempt_at(d.pop("nextAttemptAt"))

        webhook_delivery = cls(
            event_id=event_id,
            event_type=event_type,
            attempt=attempt,
            status=status,
            ok=ok,
            latency_ms=latency_ms,
            error=error,
            at=at,
            outcome=outcome,
            next_attempt_at=next_attempt_at,
        )

        return webhook_delivery
