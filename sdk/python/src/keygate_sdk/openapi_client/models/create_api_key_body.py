from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from dateutil.parser import isoparse

from ..models.create_api_key_body_key_type import CreateApiKeyBodyKeyType, check_create_api_key_body_key_type
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.create_api_key_body_metadata import CreateApiKeyBodyMetadata
    from ..models.create_api_key_body_quota import CreateApiKeyBodyQuota
    from ..models.create_api_key_body_rate_limit import CreateApiKeyBodyRateLimit


T = TypeVar("T", bound="CreateApiKeyBody")


@_attrs_define
class CreateApiKeyBody:
    """
    Attributes:
        name (None | str | Unset):
        permissions (list[str] | Unset):
        allowed_origins (list[str] | None | Unset):
        allowed_assistants (list[str] | None | Unset):
        transient_assistant (bool | Unset):
        rate_limit (CreateApiKeyBodyRateLimit | Unset):
        quota (CreateApiKeyBodyQuota | Unset):
        max_concurrent_connections (int | None | Unset):
        enforce_mtls (bool | Unset):
        client_cert_fingerprints (list[str] | None | Unset):
        metadata (CreateApiKeyBodyMetadata | Unset):
        key_type (CreateApiKeyBodyKeyType | Unset):  Default: 'private'.
        expires_at (datetime.datetime | Unset):
        expires_in_days (int | None | Unset):
    """

    name: str | Unset | None = UNSET
    permissions: list[str] | Unset = UNSET
    allowed_origins: list[str] | Unset | None = UNSET
    allowed_assistants: list[str] | Unset | None = UNSET
    transient_assistant: bool | Unset = UNSET
    rate_limit: CreateApiKeyBodyRateLimit | Unset = UNSET
    quota: CreateApiKeyBodyQuota | Unset = UNSET
    max_concurrent_connections: int | Unset | None = UNSET
    enforce_mtls: bool | Unset = UNSET
    client_cert_fingerprints: list[str] | Unset | None = UNSET
    metadata: CreateApiKeyBodyMetadata | Unset = UNSET
    key_type: CreateApiKeyBodyKeyType | Unset = "private"
    expires_at: datetime.datetime | Unset = UNSET
    expires_in_days: int | Unset | None = UNSET

    def to_dict(self) -> dict[str, Any]:
        name: str | Unset | None
        if isinstance(self.name, Unset):
            name = UNSET
        else:
            name = self.name

        permissions: list[str] | Unset = UNSET
        if not isinstance(self.permissions, Unset):
            permissions = self.permissions

        allowed_origins: list[str] | Unset | None
        if isinstance(self.allowed_origins, Unset):
            allowed_origins = UNSET
        elif isinstance(self.allowed_origins, list):
            allowed_origins = self.allowed_origins

        else:
            allowed_origins = self.allowed_origins

        allowed_assistants: list[str] | Unset | None
        if isinstance(self.allowed_assistants, Unset):
            allowed_assistants = UNSET
        elif isinstance(self.allowed_assistants, list):
            allowed_assistants = self.allowed_assistants

        else:
            allowed_assistants = self.allowed_assistants

        transient_assistant = self.transient_assistant

        rate_limit: dict[str, Any] | Unset = UNSET
        if not isinstance(self.rate_limit, Unset):
            rate_limit = self.rate_limit.to_dict()

        quota: dict[str, Any] | Unset = UNSET
        if not isinstance(self.quota, Unset):
            quota = self.quota.to_dict()

        max_concurrent_connections: int | Unset | None
        if isinstance(self.max_concurrent_connections, Unset):
            max_concurrent_connections = UNSET
        else:
            max_concurrent_connections = self.max_concurrent_connections

        enforce_mtls = self.enforce_mtls

        client_cert_fingerprints: list[str] | Unset | None
        if isinstance(self.client_cert_fingerprints, Unset):
            client_cert_fingerprints = UNSET
        elif isinstance(self.client_cert_fingerprints, list):
            client_cert_fingerprints = self.client_cert_fingerprints

        else:
            client_cert_fingerprints = self.client_cert_fingerprints

        metadata: dict[str, Any] | Unset = UNSET
        if not isinstance(self.metadata, Unset):
            metadata = self.metadata.to_dict()

        key_type: str | Unset = UNSET
        if not isinstance(self.key_type, Unset):
            key_type = self.key_type

        expires_at: str | Unset = UNSET
        if not isinstance(self.expires_at, Unset):
            expires_at = self.expires_at.isoformat()

        expires_in_days: int | Unset | None
        if isinstance(self.expires_in_days, Unset):
            expires_in_days = UNSET
        else:
            expires_in_days = self.expires_in_days

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if name is not UNSET:
            field_dict["name"] = name
        if permissions is not UNSET:
            field_dict["permissions"] = permissions
        if allowed_origins is not UNSET:
            field_dict["allowedOrigins"] = allowed_origins
        if allowed_assistants is not UNSET:
            field_dict["allowedAssistants"] = allowed_assistants
        if transient_assistant is not UNSET:
            field_dict["transientAssistant"] = transient_assistant
        if rate_limit is not UNSET:
            field_dict["rateLimit"] = rate_limit
        if quota is not UNSET:
            field_dict["quota"] = quota
        if max_concurrent_connections is not UNSET:
            field_dict["maxConcurrentConnections"] = max_concurrent_connections
        if enforce_mtls is not UNSET:
            field_dict["enforceMtls"] = enforce_mtls
        if client_cert_fingerprints is not UNSET:
            field_dict["clientCertFingerprints"] = client_cert_fingerprints
        if metadata is not UNSET:
            field_dict["metadata"] = metadata
        if key_type is not UNSET:
            field_dict["keyType"] = key_type
        if expires_at is not UNSET:
            field_dict["expiresAt"] = expires_at
        if expires_in_days is not UNSET:
            field_dict["expiresInDays"] = expires_in_days

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.create_api_key_body_metadata import CreateApiKeyBodyMetadata
        from ..models.create_api_key_body_quota import CreateApiKeyBodyQuota
        from ..models.create_api_key_body_rate_limit import CreateApiKeyBodyRateLimit

        d = dict(src_dict)

        def _parse_name(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        name = _parse_name(d.pop("name", UNSET))

        permissions = cast(list[str], d.pop("permissions", UNSET))

        def _parse_allowed_origins(data: object) -> list[str] | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                allowed_origins_type_0 = cast(list[str], data)

                return allowed_origins_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        allowed_origins = _parse_allowed_origins(d.pop("allowedOrigins", UNSET))

        def _parse_allowed_assistants(data: object) -> list[str] | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                allowed_assistants_type_0 = cast(list[str], data)

                return allowed_assistants_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        allowed_assistants = _parse_allowed_assistants(d.pop("allowedAssistants", UNSET))

        transient_assistant = d.pop("transientAssistant", UNSET)

        _rate_limit = d.pop("rateLimit", UNSET)
        rate_limit: CreateApiKeyBodyRateLimit | Unset
        if isinstance(_rate_limit, Unset):
            rate_limit = UNSET
        else:
            rate_limit = CreateApiKeyBodyRateLimit.from_dict(_rate_limit)

        _quota = d.pop("quota", UNSET)
        quota: CreateApiKeyBodyQuota | Unset
        if isinstance(_quota, Unset):
            quota = UNSET
        else:
            quota = CreateApiKeyBodyQuota.from_dict(_quota)

        def _parse_max_concurrent_connections(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_concurrent_connections = _parse_max_concurrent_connections(d.pop("maxConcurrentConnections", UNSET))

        enforce_mtls = d.pop("enforceMtls", UNSET)

        def _parse_client_cert_fingerprints(data: object) -> list[str] | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                client_cert_fingerprints_type_0 = cast(list[str], data)

                return client_cert_fingerprints_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        client_cert_fingerprints = _parse_client_cert_fingerprints(d.pop("clientCertFingerprints", UNSET))

        _metadata = d.pop("metadata", UNSET)
        metadata: CreateApiKeyBodyMetadata | Unset
        if isinstance(_metadata, Unset):
            metadata = UNSET
        else:
            metadata = CreateApiKeyBodyMetadata.from_dict(_metadata)

        _key_type = d.pop("keyType", UNSET)
        key_type: CreateApiKeyBodyKeyType | Unset
        if isinstance(_key_type, Unset):
            key_type = UNSET
        else:
            key_type = check_create_api_key_body_key_type(_key_type)

        _expires_at = d.pop("expiresAt", UNSET)
        expires_at: datetime.datetime | Unset
        if isinstance(_expires_at, Unset):
            expires_at = UNSET
        else:
            expires_at = isoparse(_expires_at)

        def _parse_expires_in_days(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        expires_in_days = _parse_expires_in_days(d.pop("expiresInDays", UNSET))

        create_api_key_body = cls(
            name=name,
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
            key_type=key_type,
            expires_at=expires_at,
            expires_in_days=expires_in_days,
        )

        return create_api_key_body
