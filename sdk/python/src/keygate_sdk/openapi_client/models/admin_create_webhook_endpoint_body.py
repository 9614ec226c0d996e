from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.admin_create_webhook_endpoint_body_events_item import (
    AdminCreateWebhookEndpointBodyEventsItem,
    check_admin_create_webhook_endpoint_body_events_item,
)
from ..types import UNSET, Unset

T = TypeVar("T", bound="AdminCreateWebhookEndpointBody")


@_attrs_define
class AdminCreateWebhookEndpointBody:
    """
    Attributes:
        url (str): Where events are POSTed (http or https, without credentials); redirects are not followed
        description (None | str | Unset):
        events (list[AdminCreateWebhookEndpointBodyEventsItem] | Unset): Event types delivered; `*` for every type
    """

    url: str
    description: str | Unset | None = UNSET
    events: list[AdminCreateWebhookEndpointBodyEventsItem] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        url = self.url

        description: str | Unset | None
        if isinstance(self.description, Unset):
            description = UNSET
        else:
            description = self.description

        events: list[str] | Unset = UNSET
        if not isinstance(self.events, Unset):
            events = []
            for events_item_data in self.events:
                events_item: str = events_item_data
                events.append(events_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "url": url,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description
        if events is not UNSET:
            field_dict["events"] = events

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        url = d.pop("url")

        def _parse_description(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        description = _parse_description(d.pop("description", UNSET))

        _events = d.pop("events", UNSET)
        events: list[AdminCreateWebhookEndpointBodyEventsItem] | Unset = UNSET
        if _events is not UNSET:
            events = []
            for events_item_data in _events:
                events_item = check_admin_create_webhook_endpoint_body_events_item(events_item_data)

                events.append(events_item)

        admin_create_webhook_endpoint_body = cls(
            url=url,
            description=description,
            events=events,
        )

        return admin_create_webhook_endpoint_body
