from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from dateutil.parser import isoparse

from ..models.api_key_key_type import ApiKeyKeyType, check_api_key_key_type

if TYPE_CHECKING:
    from ..models.api_key_metadata import ApiKeyMetadata
    from ..models.api_key_quota import ApiKeyQuota
    from ..models.api_key_rate_limit import ApiKeyRateLimit


T = TypeVar("T", bound="ApiKey")


@_attrs_define
class ApiKey:
    """
    Attributes:
        id (str):
        tenant_id (str):
        name (None | str):
        key_type (ApiKeyKeyType):
        prefix (str):
        permissions (list[str]):
        allowed_origins (list[str] | None):
        allowed_assistants (list[str] | None):
        transient_assistant (bool):
        rate_limit (ApiKeyRateLimit):
        quota (ApiKeyQuota): Monthly quotas (calendar month, UTC); null = none of the key's own (the plan's maximum
            still caps the tenant). A key's requests and session minutes also count against every monthly quota of the keys
            that created it (its creator chain, with the quotas they held when it was made), so minting, using and revoking
            children cannot create quota
        max_concurrent_connections (int | None):
        enforce_mtls (bool):
        client_cert_fingerprints (list[str] | None):
        metadata (ApiKeyMetadata):
        is_active (bool):
        created_at (datetime.datetime):
        updated_at (datetime.datetime):
        expires_at (datetime.datetime | None):
        last_used_at (datetime.datetime | None):
        created_by (str):
    """

    id: str
    tenant_id: str
    name: str | None
    key_type: ApiKeyKeyType
    prefix: str
    permissions: list[str]
    allowed_origins: list[str] | None
    allowed_assistants: list[str] | None
    transient_assistant: bool
    rate_limit: ApiKeyRateLimit
    quota: ApiKeyQuota
    max_concurrent_connections: int | None
    enforce_mtls: bool
    client_cert_fingerprints: list[str] | None
    metadata: ApiKeyMetadata
    is_active: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        tenant_id = self.tenant_id

        name: str | None
        name = self.name

        key_type: str = self.key_type

        prefix = self.prefix

        permissions = self.permissions

        allowed_origins: list[str] | None
        if isinstance(self.allowed_origins, list):
            allowed_origins = self.allowed_origins

        else:
            allowed_origins = self.allowed_origins

        allowed_assistants: list[str] | None
        if isinstance(self.allowed_assistants, list):
            allowed_assistants = self.allowed_assistants

        else:
            allowed_assistants = self.allowed_assistants

        transient_assistant = self.transient_assistant

        rate_limit = self.rate_limit.to_dict()

        quota = self.quota.to_dict()

        max_concurrent_connections: int | None
        max_concurrent_connections = self.max_concurrent_connections

        enforce_mtls = self.enforce_mtls

        client_cert_fingerprints: list[str] | None
        if isinstance(self.client_cert_fingerprints, list):
            client_cert_fingerprints = self.client_cert_fingerprints

        else:
            client_cert_fingerprints = self.client_cert_fingerprints

        metadata = self.metadata.to_dict()

        is_active = self.is_active

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

        expires_at: str | None
        if isinstance(self.expires_at, datetime.datetime):
            expires_at = self.expires_at.isoformat()
        else:
            expires_at = self.expires_at

        last_used_at: str | None
        if isinstance(self.last_used_at, datetime.datetime):
            last_used_at = self.last_used_at.isoformat()
        else:
            last_used_at = self.last_used_at

        created_by = self.created_by

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "tenantId": tenant_id,
                "name": name,
                "keyType": key_type,
                "prefix": prefix,
                "permissions": permissions,
                "allowedOrigins": allowed_origins,
                "allowedAssistants": allowed_assistants,
                "transientAssistant": transient_assistant,
                "rateLimit": rate_limit,
                "quota": quota,
                "maxConcurrentConnections": max_concurrent_connections,
                "enforceMtls": enforce_mtls,
                "clientCertFingerprints": client_cert_fingerprints,
                "metadata": metadata,
                "isActive": is_active,
                "createdAt": created_at,
                "updatedAt": updated_at,
                "expiresAt": expires_at,
                "lastUsedAt": last_used_at,
                "createdBy": created_by,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.api_key_metadata import ApiKeyMetadata
        from ..models.api_key_quota import ApiKeyQuota
        from ..models.api_key_rate_limit import ApiKeyRateLimit

        d = dict(src_dict)
        id = d.pop("id")

        tenant_id = d.pop("tenantId")

        def _parse_name(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        name = _parse_name(d.pop("name"))

        key_type = check_api_key_key_type(d.pop("keyType"))

        prefix = d.pop("prefix")

        permissions = cast(list[str], d.pop("permissions"))

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

        transient_assistant = d.pop("transientAssistant")

        rate_limit = ApiKeyRateLimit.from_dict(d.pop("rateLimit"))

        quota = ApiKeyQuota.from_dict(d.pop("quota"))

        def _parse_max_concurrent_connections(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        max_concurrent_connections = _parse_max_concurrent_connections(d.pop("maxConcurrentConnections"))

        enforce_mtls = d.pop("enforceMtls")

        def _parse_client_cert_fingerprints(data: object) -> list[str] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                client_cert_fingerprints_type_0 = cast(list[str], data)

                return client_cert_fingerprints_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None, data)

        client_cert_fingerprints = _parse_client_cert_fingerprints(d.pop("clientCertFingerprints"))

        metadata = ApiKeyMetadata.from_dict(d.pop("metadata"))

        is_active = d.pop("isActive")

        created_at = isoparse(d.pop("createdAt"))

        updated_at = isoparse(d.pop("updatedAt"))

        def _parse_expires_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                expires_at_type_0 = isoparse(data)

                return expires_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        expires_at = _parse_expires_at(d.pop("expiresAt"))

        def _parse_last_used_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                last_used_at_type_0 = isoparse(data)

                return last_used_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        last_used_at = _parse_last_used_at(d.pop("lastUsedAt"))

        created_by = d.pop("createdBy")

        api_key = cls(
            id=id,
            tenant_id=tenant_id,
            name=name,
            key_type=key_type,
            prefix=prefix,
            permissions=permissions,
            allowed_origins=allowed_origins,
            allowed_assistants=allowed_assistants,
            transient_assistant=transient_assistant,
            rate_limit=rate_limit,
            quota=quota,
            max_concurrent_connections=max_concurrent_connections,
            enforce_mtls=enforce_mtls,
            client_cert_fingerprints=client_cert_fingerprints,
            metadata=metadata,
            is_active=is_active,
            created_at=created_at,
            updated_at=updated_at,
            expires_at=expires_at,
            last_used_at=last_used_at,
            created_by=created_by,
        )

        return api_key
