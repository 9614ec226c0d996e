from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from dateutil.parser import isoparse

if TYPE_CHECKING:
    from ..models.audit_entry_details import AuditEntryDetails


T = TypeVar("T", bound="AuditEntry")


@_attrs_define
class AuditEntry:
    """
    Attributes:
        id (str):
        at (datetime.datetime):
        action (str):
        actor (str):
        key_id (None | str):
        details (AuditEntryDetails): What the action did. A `key.access_denied` entry stands for every refusal of one
            actor, key and operation in one `audit.refusalWindowSeconds` window (default an hour): it is written again at
            each repeat, newest first, with `count` (refusals so far in the window) and `firstAt` (the first of them), so
            refusals cannot push lifecycle records out of the capped log
    """

    id: str
    at: datetime.datetime
    action: str
    actor: str
    key_id: str | None
    details: AuditEntryDetails

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        at = self.at.isoformat()

        action = self.action

        actor = self.actor

        key_id: str | None
        key_id = self.key_id

        details = self.details.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "at": at,
                "action": action,
                "actor": actor,
                "keyId": key_id,
                "details": details,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.audit_entry_details import AuditEntryDetails

        d = dict(src_dict)
        id = d.pop("id")

        at = isoparse(d.pop("at"))

        action = d.pop("action")

        actor = d.pop("actor")

        def _parse_key_id(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        key_id = _parse_key_id(d.pop("keyId"))

        details = AuditEntryDetails.from_dict(d.pop("details"))

        audit_entry = cls(
            id=id,
            at=at,
            action=action,
            actor=actor,
            key_id=key_id,
            details=details,
        )

        return audit_entry
