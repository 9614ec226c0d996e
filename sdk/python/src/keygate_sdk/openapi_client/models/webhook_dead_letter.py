from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.webhook_dead_letter_event import WebhookDeadLetterEvent


T = TypeVar("T", bound="WebhookDeadLetter")


@_attrs_define
class WebhookDeadLetter:
    """
    Attributes:
        key (str): Pass to redeliver
        endpoint_id (str):
        attempts (int):
        event (WebhookDeadLetterEvent):
        dead_at (str | Unset): When it was dead-lettered; it is removed `webhooks.deadLetterHours` after
    """

    key: str
    endpoint_id: str
    attempts: int
    event: WebhookDeadLetterEvent
    dead_at: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        key = self.key

        endpoint_id = self.endpoint_id

        attempts = self.attempts

        event = self.event.to_dict()

        dead_at = self.dead_at

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "key": key,
                "endpointId": endpoint_id,
                "attempts": attempts,
                "event": event,
            }
        )
        if dead_at is not UNSET:
            field_dict["deadAt"] = dead_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.webhook_dead_letter_event import WebhookDeadLetterEvent

        d = dict(src_dict)
        key = d.pop("key")

        endpoint_id = d.pop("endpointId")

        attempts = d.pop("attempts")

        event = WebhookDeadLetterEvent.from_dict(d.pop("event"))

        dead_at = d.pop("deadAt", UNSET)

        webhook_dead_letter = cls(
            key=key,
            endpoint_id=endpoint_id,
            attempts=attempts,
            event=event,
            dead_at=dead_at,
        )

        return webhook_dead_letter
