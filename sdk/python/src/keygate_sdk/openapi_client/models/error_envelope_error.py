from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.error_envelope_error_details_item import ErrorEnvelopeErrorDetailsItem


T = TypeVar("T", bound="ErrorEnvelopeError")


@_attrs_define
class ErrorEnvelopeError:
    """
    Attributes:
        code (str): The machine code, each with its fixed status: one of validation_error, malformed_request,
            missing_api_key, invalid_api_key, key_expired, key_disabled, insufficient_permissions, public_key_not_allowed,
            origin_not_allowed, mtls_required, client_certificate_not_allowed, assistant_not_allowed,
            transient_assistant_not_allowed, tenant_suspended, gateway_not_trusted, inline_proxy_required, not_found,
            route_not_allowed, key_limit_reached, cannot_revoke_current_key, request_timeout, payload_too_large,
            rate_limited, concurrency_limit_reached, too_many_failed_attempts, quota_exceeded, internal_error,
            upstream_unavailable, store_unavailable, upstream_timeout, or one added later
        message (str):
        request_id (str):
        details (list[ErrorEnvelopeErrorDetailsItem] | Unset):
    """

    code: str
    message: str
    request_id: str
    details: list[ErrorEnvelopeErrorDetailsItem] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        code = self.code

        message = self.message

        request_id = self.request_id

        details: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.details, Unset):
            details = []
            for details_item_data in self.details:
                details_item = details_item_data.to_dict()
                details.append(details_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "code": code,
                "message": message,
                "requestId": request_id,
            }
        )
        if details is not UNSET:
            field_dict["details"] = details

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.error_envelope_error_details_item import ErrorEnvelopeErrorDetailsItem

        d = dict(src_dict)
        code = d.pop("code")

        message = d.pop("message")

        request_id = d.pop("requestId")

        _details = d.pop("details", UNSET)
        details: list[ErrorEnvelopeErrorDetailsItem] | Unset = UNSET
        if _details is not UNSET:
            details = []
            for details_item_data in _details:
                details_item = ErrorEnvelopeErrorDetailsItem.from_dict(details_item_data)

                details.append(details_item)

        error_envelope_error = cls(
            code=code,
            message=message,
            request_id=request_id,
            details=details,
        )

        return error_envelope_error
