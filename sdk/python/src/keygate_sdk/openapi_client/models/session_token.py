from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from dateutil.parser import isoparse

if TYPE_CHECKING:
    from ..models.session_token_metadata_type_0 import SessionTokenMetadataType0


T = TypeVar("T", bound="SessionToken")


@_attrs_define
class SessionToken:
    """
    Attributes:
        id (str): Token id (`tok_` + ULID), forwarded upstream as X-Session-Token-Id
        tenant_id (str):
        key_id (str): The minting key: it is charged for everything the token does, and the token dies with it
        issued_at (datetime.datetime):
        expires_at (datetime.datetime): Never later than the minting key's own expiry
        permissions (list[str] | None): null: the minting key's permissions, as they are at each request
        allowed_assistants (list[str] | None):
        allowed_origins (list[str] | None):
        max_sessions (int): WebSocket sessions the token may open over its life
        max_uses (int | None): HTTP requests the token may make over its life; null: no count
        metadata (None | SessionTokenMetadataType0): Forwarded upstream as X-Session-Token-Metadata (JSON)
    """

    id: str
    tenant_id: str
    key_id: str
    issued_at: datetime.datetime
    expires_at: datetime.datetime
    permissions: list[str] | None
    allowed_assistants: list[str] | None
    allowed_origins: list[str] | None
    max_sessions: int
    max_uses: int | None
    metadata: SessionTokenMetadataType0 | None

    def to_dict(self) -> dict[str, Any]:
        from ..models.session_token_metadata_type_0 import SessionTokenMetadataType0

        id = self.id

        tenant_id = self.tenant_id

        key_id = self.key_id

        issued_at = self.issued_at.isoformat()

        expires_at = self.expires_at.isoformat()

        permissions: list[str] | None
        if isinstance(self.permissions, list):
            permissions = self.permissions

        else:
            permissions = self.permissions

        allowed_assistants: list[str] | None
        if isinstance(self.allowed_assistants, list):
            allowed_assistants = self.allowed_assistants

        else:
            allowed_assistants = self.allowed_assistants

        allowed_origins: list[str] | None
        if isinstance(self.allowed_origins, list):
            allowed_origins = self.allowed_origins

        else:
            allowed_origins = self.allowed_origins

        max_sessions = self.max_sessions

        max_uses: int | None
        max_uses = self.max_uses

        metadata: dict[str, Any] | None
        if isinstance(self.metadata, SessionTokenMetadataType0):
            metadata = self.metadata.to_dict()
        else:
            metadata = self.metadata

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "tenantId": tenant_id,
                "keyId": key_id,
                "issuedAt": issued_at,
                "expiresAt": expires_at,
                "permissions": permissions,
                "allowedAssistants": allowed_assistants,
                "allowedOrigins": allowed_origins,
                "maxSessions": max_sessions,
                "maxUses": max_uses,
                "metadata": metadata,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.session_token_metadata_type_0 import SessionTokenMetadataType0

        d = dict(src_dict)
        id = d.pop("id")

        tenant_id = d.pop("tenantId")

        key_id = d.pop("keyId")

        issued_at = isoparse(d.pop("issuedAt"))

        expires_at = isoparse(d.pop("expiresAt"))

        def _parse_permissions(data: object) -> list[str] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                permissions_type_0 = cast(list[str], data)

                return permissions_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None, data)

        permissions = _parse_permissions(d.pop("permissions"))

        def _parse_allowed_assistants(data: object) -> list[str] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                allowed_assistants_type_0 = cast(list[str], data)

                return allowed_assistants_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None, data)

        allowed_assistants = _parse_allowed_assistants(d.pop("allowedAssistants"))

        def _parse_allowed_origins(data: object) -> list[str] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                allowed_origins_type_0 = cast(list[str], data)

                return allowed_origins_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None, data)

        allowed_origins = _parse_allowed_origins(d.pop("allowedOrigins"))

        max_sessions = d.pop("maxSessions")

        def _parse_max_uses(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        max_uses = _parse_max_uses(d.pop("maxUses"))

        def _parse_metadata(data: object) -> SessionTokenMetadataType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                metadata_type_0 = SessionTokenMetadataType0.from_dict(data)

                return metadata_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SessionTokenMetadataType0, data)

        metadata = _parse_metadata(d.pop("metadata"))

        session_token = cls(
            id=id,
            tenant_id=tenant_id,
            key_id=key_id,
            issued_at=issued_at,
            expires_at=expires_at,
            permissions=permissions,
            allowed_assistants=allowed_assistants,
            allowed_origins=allowed_origins,
            max_sessions=max_sessions,
            max_uses=max_uses,
            metadata=metadata,
        )

        return session_token
