from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="WebhookEndpoint")


@_attrs_define
class WebhookEndpoint:
    """
    Attributes:
        id (str):
        url (str):
        description (None | str):
        events (list[str]):
        secrets_active (int): Secrets signing each delivery (2 while a rotation is in its grace period)
        failing_since (None | str): When its deliveries started failing (null: the last one succeeded)
        disabled_at (None | str): Disabled after failing for `webhooks.retryForHours`: no deliveries until enabled again
        created_at (str):
        updated_at (str):
    """

    id: str
    url: str
    description: str | None
    events: list[str]
    secrets_active: int
    failing_since: str | None
    disabled_at: str | None
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        url = self.url

        description: str | None
        description = self.description

        events = self.events

        secrets_active = self.secrets_active

        failing_since: str | None
        failing_since = self.failing_since

        disabled_at: str | None
        disabled_at = self.disabled_at

        created_at = self.created_at

        updated_at = self.updated_at

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "url": url,
                "description": description,
                "events": events,
                "secretsActive": secrets_active,
                "failingSince": failing_since,
                "disabledAt": disabled_at,
                "createdAt": created_at,
                "updatedAt": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        url = d.pop("url")

        def _parse_description(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        description = _parse_description(d.pop("description"))

        events = cast(list[str], d.pop("events"))

        secrets_active = d.pop("secretsActive")

        def _parse_failing_since(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        failing_since = _parse_failing_since(d.pop("failingSince"))

        def _parse_disabled_at(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        disabled_at = _parse_disabled_at(d.pop("disabledAt"))

        created_at = d.pop("createdAt")

        updated_at = d.pop("updatedAt")

        webhook_endpoint = cls(
            id=id,
            url=url,
            description=description,
            events=events,
            secrets_active=secrets_active,
            failing_since=failing_since,
            disabled_at=disabled_at,
            created_at=created_at,
            updated_at=updated_at,
        )

        return webhook_endpoint
