from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.webhook_dead_letter_event_data import WebhookDeadLetterEventData


T = TypeVar("T", bound="WebhookDeadLetterEvent")


@_attrs_define
class WebhookDeadLetterEvent:
    """
    Attributes:
        id (str):
        type_ (str):
        timestamp (str):
        data (WebhookDeadLetterEventData):
    """

    id: str
    type_: str
    timestamp: str
    data: WebhookDeadLetterEventData

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        type_ = self.type_

        timestamp = self.timestamp

        data = self.data.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "type": type_,
                "timestamp": timestamp,
                "data": data,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.webhook_dead_letter_event_data import WebhookDeadLetterEventData

        d = dict(src_dict)
        id = d.pop("id")

        type_ = d.pop("type")

        timestamp = d.pop("timestamp")

        data = WebhookDeadLetterEventData.from_dict(d.pop("data"))

        webhook_dead_letter_event = cls(
            id=id,
            type_=type_,
            timestamp=timestamp,
            data=data,
        )

        return webhook_dead_letter_event
