from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.admin_mint_session_token_body_metadata import AdminMintSessionTokenBodyMetadata


T = TypeVar("T", bound="AdminMintSessionTokenBody")


@_attrs_define
class AdminMintSessionTokenBody:
    """
    Attributes:
        key_id (str):
        ttl_seconds (int | Unset):  Default: 60.
        permissions (list[str] | Unset):
        assistant_id (str | Unset):
        allowed_assistants (list[str] | Unset):
        allowed_origins (list[str] | Unset):
        max_sessions (int | Unset):  Default: 1.
        max_uses (int | None | Unset):
        metadata (AdminMintSessionTokenBodyMetadata | Unset):
    """

    key_id: str
    ttl_seconds: int | Unset = 60
    permissions: list[str] | Unset = UNSET
    assistant_id: str | Unset = UNSET
    allowed_assistants: list[str] | Unset = UNSET
    allowed_origins: list[str] | Unset = UNSET
    max_sessions: int | Unset = 1
    max_uses: int | Unset | None = UNSET
    metadata: AdminMintSessionTokenBodyMetadata | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        key_id = self.key_id

        ttl_seconds = self.ttl_seconds

        permissions: list[str] | Unset = UNSET
        if not isinstance(self.permissions, Unset):
            permissions = self.permissions

        assistant_id = self.assistant_id

        allowed_assistants: list[str] | Unset = UNSET
        if not isinstance(self.allowed_assistants, Unset):
            allowed_assistants = self.allowed_assistants

        allowed_origins: list[str] | Unset = UNSET
        if not isinstance(self.allowed_origins, Unset):
            allowed_origins = self.allowed_origins

        max_sessions = self.max_sessions

        max_uses: int | Unset | None
        if isinstance(self.max_uses, Unset):
            max_uses = UNSET
        else:
            max_uses = self.max_uses

        metadata: dict[str, Any] | Unset = UNSET
        if not isinstance(self.metadata, Unset):
            metadata = self.metadata.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "keyId": key_id,
            }
        )
        if ttl_seconds is not UNSET:
            field_dict["ttlSeconds"] = ttl_seconds
        if permissions is not UNSET:
            field_dict["permissions"] = permissions
        if assistant_id is not UNSET:
            field_dict["assistantId"] = assistant_id
        if allowed_assistants is not UNSET:
            field_dict["allowedAssistants"] = allowed_assistants
        if allowed_origins is not UNSET:
            field_dict["allowedOrigins"] = allowed_origins
        if max_sessions is not UNSET:
            field_dict["maxSessions"] = max_sessions
        if max_uses is not UNSET:
            field_dict["maxUses"] = max_uses
        if metadata is not UNSET:
            field_dict["metadata"] = metadata

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.admin_mint_session_token_body_metadata import AdminMintSessionTokenBodyMetadata

        d = dict(src_dict)
        key_id = d.pop("keyId")

        ttl_seconds = d.pop("ttlSeconds", UNSET)

        permissions = cast(list[str], d.pop("permissions", UNSET))

        assistant_id = d.pop("assistantId", UNSET)

        allowed_assistants = cast(list[str], d.pop("allowedAssistants", UNSET))

        allowed_origins = cast(list[str], d.pop("allowedOrigins", UNSET))

        max_sessions = d.pop("maxSessions", UNSET)

        def _parse_max_uses(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_uses = _parse_max_uses(d.pop("maxUses", UNSET))

        _metadata = d.pop("metadata", UNSET)
        metadata: AdminMintSessionTokenBodyMetadata | Unset
        if isinstance(_metadata, Unset):
            metadata = UNSET
        else:
            metadata = AdminMintSessionTokenBodyMetadata.from_dict(_metadata)

        admin_mint_session_token_body = cls(
            key_id=key_id,
            ttl_seconds=ttl_seconds,
            permissions=permissions,
            assistant_id=assistant_id,
            allowed_assistants=allowed_assistants,
            allowed_origins=allowed_origins,
            max_sessions=max_sessions,
            max_uses=max_uses,
            metadata=metadata,
        )

        return admin_mint_session_token_body
