"""Contains all the data models used in inputs/outputs"""

from .admin_create_api_key_body import AdminCreateApiKeyBody
from .admin_create_api_key_body_key_type import AdminCreateApiKeyBodyKeyType
from .admin_create_api_key_body_metadata import AdminCreateApiKeyBodyMetadata
from .admin_create_api_key_body_quota import AdminCreateApiKeyBodyQuota
from .admin_create_api_key_body_rate_limit import AdminCreateApiKeyBodyRateLimit
from .admin_create_tenant_body import AdminCreateTenantBody
from .admin_create_webhook_endpoint_body import AdminCreateWebhookEndpointBody
from .admin_create_webhook_endpoint_body_events_item import AdminCreateWebhookEndpointBodyEventsItem
from .admin_get_tenant_usage_granularity import AdminGetTenantUsageGranularity
from .admin_mint_session_token_body import AdminMintSessionTokenBody
from .admin_mint_session_token_body_metadata import AdminMintSessionTokenBodyMetadata
from .admin_rotate_api_key_body import AdminRotateApiKeyBody
from .admin_rotate_webhook_secret_body import AdminRotateWebhookSecretBody
from .admin_update_api_key_body import AdminUpdateApiKeyBody
from .admin_update_api_key_body_metadata import AdminUpdateApiKeyBodyMetadata
from .admin_update_api_key_body_quota import AdminUpdateApiKeyBodyQuota
from .admin_update_api_key_body_rate_limit import AdminUpdateApiKeyBodyRateLimit
from .admin_update_tenant_body import AdminUpdateTenantBody
from .admin_update_tenant_body_status import AdminUpdateTenantBodyStatus
from .api_key import ApiKey
from .api_key_key_type import ApiKeyKeyType
from .api_key_metadata import ApiKeyMetadata
from .api_key_page import ApiKeyPage
from .api_key_quota import ApiKeyQuota
from .api_key_rate_limit import ApiKeyRateLimit
from .audit_entry import AuditEntry
from .audit_entry_details import AuditEntryDetails
from .audit_entry_page import AuditEntryPage
from .create_api_key_body import CreateApiKeyBody
from .create_api_key_body_key_type import CreateApiKeyBodyKeyType
from .create_api_key_body_metadata import CreateApiKeyBodyMetadata
from .create_api_key_body_quota import CreateApiKeyBodyQuota
from .create_api_key_body_rate_limit import CreateApiKeyBodyRateLimit
from .create_webhook_endpoint_body import CreateWebhookEndpointBody
from .create_webhook_endpoint_body_events_item import CreateWebhookEndpointBodyEventsItem
from .created_api_key import CreatedApiKey
from .created_api_key_key_type import CreatedApiKeyKeyType
from .created_api_key_metadata import CreatedApiKeyMetadata
from .created_api_key_quota import CreatedApiKeyQuota
from .created_api_key_rate_limit import CreatedApiKeyRateLimit
from .created_tenant import CreatedTenant
from .created_webhook_endpoint import CreatedWebhookEndpoint
from .error_envelope import ErrorEnvelope
from .error_envelope_error import ErrorEnvelopeError
from .error_envelope_error_details_item import ErrorEnvelopeErrorDetailsItem
from .fleet import Fleet
from .fleet_blocked_addresses_item import FleetBlockedAddressesItem
from .fleet_decisions_per_minute_item import FleetDecisionsPerMinuteItem
from .fleet_decisions_per_minute_item_counts import FleetDecisionsPerMinuteItemCounts
from .fleet_redis_type_0 import FleetRedisType0
from .fleet_redis_type_0_status import FleetRedisType0Status
from .fleet_store import FleetStore
from .fleet_top_tenants import FleetTopTenants
from .fleet_top_tenants_data_item import FleetTopTenantsDataItem
from .fleet_webhooks import FleetWebhooks
from .get_open_api_document_response_200 import GetOpenApiDocumentResponse200
from .get_open_api_document_response_200_info import GetOpenApiDocumentResponse200Info
from .get_open_api_document_response_200_paths import GetOpenApiDocumentResponse200Paths
from .get_usage_granularity import GetUsageGranularity
from .keys_usage import KeysUsage
from .keys_usage_data_item import KeysUsageDataItem
from .keys_usage_data_item_refusals import KeysUsageDataItemRefusals
from .mint_session_token_body import MintSessionTokenBody
from .mint_session_token_body_metadata import MintSessionTokenBodyMetadata
from .minted_session_token import MintedSessionToken
from .minted_session_token_metadata_type_0 import MintedSessionTokenMetadataType0
from .operator import Operator
from .operator_role import OperatorRole
from .overview import Overview
from .plan import Plan
from .plan_max_concurrent_connections import PlanMaxConcurrentConnections
from .plan_requests_per_day import PlanRequestsPerDay
from .plan_requests_per_minute import PlanRequestsPerMinute
from .plan_requests_per_month import PlanRequestsPerMonth
from .plan_session_minutes_per_month import PlanSessionMinutesPerMonth
from .rotate_api_key_body import RotateApiKeyBody
from .rotate_webhook_secret_body import RotateWebhookSecretBody
from .session_token import SessionToken
from .session_token_metadata_type_0 import SessionTokenMetadataType0
from .tenant import Tenant
from .tenant_page import TenantPage
from .tenant_search import TenantSearch
from .tenant_search_data_item import TenantSearchDataItem
from .tenant_search_data_item_status import TenantSearchDataItemStatus
from .tenant_status import TenantStatus
from .tenant_summary import TenantSummary
from .update_api_key_body import UpdateApiKeyBody
from .update_api_key_body_metadata import UpdateApiKeyBodyMetadata
from .update_api_key_body_quota import UpdateApiKeyBodyQuota
from .update_api_key_body_rate_limit import UpdateApiKeyBodyRateLimit
from .usage_report import UsageReport
from .usage_row import UsageRow
from .usage_row_refusals import UsageRowRefusals
from .webhook_dead_letter import WebhookDeadLetter
from .webhook_dead_letter_event import WebhookDeadLetterEvent
from .webhook_dead_letter_event_data import WebhookDeadLetterEventData
from .webhook_dead_letter_list import WebhookDeadLetterList
from .webhook_delivery import WebhookDelivery
from .webhook_delivery_list import WebhookDeliveryList
from .webhook_delivery_outcome import WebhookDeliveryOutcome
from .webhook_endpoint import WebhookEndpoint
from .webhook_endpoint_list import WebhookEndpointList

__all__ = (
    "AdminCreateApiKeyBody",
    "AdminCreateApiKeyBodyKeyType",
    "AdminCreateApiKeyBodyMetadata",
    "AdminCreateApiKeyBodyQuota",
    "AdminCreateApiKeyBodyRateLimit",
    "AdminCreateTenantBody",
    "AdminCreateWebhookEndpointBody",
    "AdminCreateWebhookEndpointBodyEventsItem",
    "AdminGetTenantUsageGranularity",
    "AdminMintSessionTokenBody",
    "AdminMintSessionTokenBodyMetadata",
    "AdminRotateApiKeyBody",
    "AdminRotateWebhookSecretBody",
    "AdminUpdateApiKeyBody",
    "AdminUpdateApiKeyBodyMetadata",
    "AdminUpdateApiKeyBodyQuota",
    "AdminUpdateApiKeyBodyRateLimit",
    "AdminUpdateTenantBody",
    "AdminUpdateTenantBodyStatus",
    "ApiKey",
    "ApiKeyKeyType",
    "ApiKeyMetadata",
    "ApiKeyPage",
    "ApiKeyQuota",
    "ApiKeyRateLimit",
    "AuditEntry",
    "AuditEntryDetails",
    "AuditEntryPage",
    "CreateApiKeyBody",
    "CreateApiKeyBodyKeyType",
    "CreateApiKeyBodyMetadata",
    "CreateApiKeyBodyQuota",
    "CreateApiKeyBodyRateLimit",
    "CreateWebhookEndpointBody",
    "CreateWebhookEndpointBodyEventsItem",
    "CreatedApiKey",
    "CreatedApiKeyKeyType",
    "CreatedApiKeyMetadata",
    "CreatedApiKeyQuota",
    "CreatedApiKeyRateLimit",
    "CreatedTenant",
    "CreatedWebhookEndpoint",
    "ErrorEnvelope",
    "ErrorEnvelopeError",
    "ErrorEnvelopeErrorDetailsItem",
    "Fleet",
    "FleetBlockedAddressesItem",
    "FleetDecisionsPerMinuteItem",
    "FleetDecisionsPerMinuteItemCounts",
    "FleetRedisType0",
    "FleetRedisType0Status",
    "FleetStore",
    "FleetTopTenants",
    "FleetTopTenantsDataItem",
    "FleetWebhooks",
    "GetOpenApiDocumentResponse200",
    "GetOpenApiDocumentResponse200Info",
    "GetOpenApiDocumentResponse200Paths",
    "GetUsageGranularity",
    "KeysUsage",
    "KeysUsageDataItem",
    "KeysUsageDataItemRefusals",
    "MintSessionTokenBody",
    "MintSessionTokenBodyMetadata",
    "MintedSessionToken",
    "MintedSessionTokenMetadataType0",
    "Operator",
    "OperatorRole",
    "Overview",
    "Plan",
    "PlanMaxConcurrentConnections",
    "PlanRequestsPerDay",
    "PlanRequestsPerMinute",
    "PlanRequestsPerMonth",
    "PlanSessionMinutesPerMonth",
    "RotateApiKeyBody",
    "RotateWebhookSecretBody",
    "SessionToken",
    "SessionTokenMetadataType0",
    "Tenant",
    "TenantPage",
    "TenantSearch",
    "TenantSearchDataItem",
    "TenantSearchDataItemStatus",
    "TenantStatus",
    "TenantSummary",
    "UpdateApiKeyBody",
    "UpdateApiKeyBodyMetadata",
    "UpdateApiKeyBodyQuota",
    "UpdateApiKeyBodyRateLimit",
    "UsageReport",
    "UsageRow",
    "UsageRowRefusals",
    "WebhookDeadLetter",
    "WebhookDeadLetterEvent",
    "WebhookDeadLetterEventData",
    "WebhookDeadLetterList",
    "WebhookDelivery",
    "WebhookDeliveryList",
    "WebhookDeliveryOutcome",
    "WebhookEndpoint",
    "WebhookEndpointList",
)
