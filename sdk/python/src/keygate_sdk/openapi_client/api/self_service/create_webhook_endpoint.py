from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.create_webhook_endpoint_body import CreateWebhookEndpointBody
from ...models.created_webhook_endpoint import CreatedWebhookEndpoint
from ...models.error_envelope import ErrorEnvelope
from ...types import Response


def _get_kwargs(
    *,
    body: CreateWebhookEndpointBody,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/keygate/v1/webhooks",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> CreatedWebhookEndpoint | ErrorEnvelope | None:
    if response.status_code == 201:
        response_201 = CreatedWebhookEndpoint.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = ErrorEnvelope.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorEnvelope.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ErrorEnvelope.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = ErrorEnvelope.from_dict(response.json())

        return response_404

    if response.status_code == 408:
        response_408 = ErrorEnvelope.from_dict(response.json())

        return response_408

    if response.status_code == 413:
        response_413 = ErrorEnvelope.from_dict(response.json())

        return response_413

    if response.status_code == 429:
        response_429 = ErrorEnvelope.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = ErrorEnvelope.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = ErrorEnvelope.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[CreatedWebhookEndpoint | ErrorEnvelope]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: CreateWebhookEndpointBody,
) -> Response[CreatedWebhookEndpoint | ErrorEnvelope]:
    """Add a webhook endpoint

     Events are POSTed signed per the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
    `webhook-signature`). A tenant has at most `webhooks.maxEndpointsPerTenant` (400 `validation_error`
    beyond), and none while it is being deleted (403 `tenant_suspended`). Answers 404 `not_found` when
    webhooks are off (`webhooks.enabled`). Needs `webhooks:write`.

    Args:
        body (CreateWebhookEndpointBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CreatedWebhookEndpoint | ErrorEnvelope]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: CreateWebhookEndpointBody,
) -> CreatedWebhookEndpoint | ErrorEnvelope | None:
    """Add a webhook endpoint

     Events are POSTed signed per the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
    `webhook-signature`). A tenant has at most `webhooks.maxEndpointsPerTenant` (400 `validation_error`
    beyond), and none while it is being deleted (403 `tenant_suspended`). Answers 404 `not_found` when
    webhooks are off (`webhooks.enabled`). Needs `webhooks:write`.

    Args:
        body (CreateWebhookEndpointBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CreatedWebhookEndpoint | ErrorEnvelope
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: CreateWebhookEndpointBody,
) -> Response[CreatedWebhookEndpoint | ErrorEnvelope]:
    """Add a webhook endpoint

     Events are POSTed signed per the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
    `webhook-signature`). A tenant has at most `webhooks.maxEndpointsPerTenant` (400 `validation_error`
    beyond), and none while it is being deleted (403 `tenant_suspended`). Answers 404 `not_found` when
    webhooks are off (`webhooks.enabled`). Needs `webhooks:write`.

    Args:
        body (CreateWebhookEndpointBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CreatedWebhookEndpoint | ErrorEnvelope]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: CreateWebhookEndpointBody,
) -> CreatedWebhookEndpoint | ErrorEnvelope | None:
    """Add a webhook endpoint

     Events are POSTed signed per the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
    `webhook-signature`). A tenant has at most `webhooks.maxEndpointsPerTenant` (400 `validation_error`
    beyond), and none while it is being deleted (403 `tenant_suspended`). Answers 404 `not_found` when
    webhooks are off (`webhooks.enabled`). Needs `webhooks:write`.

    Args:
        body (CreateWebhookEndpointBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CreatedWebhookEndpoint | ErrorEnvelope
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
