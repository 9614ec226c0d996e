from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.create_api_key_body import CreateApiKeyBody
from ...models.created_api_key import CreatedApiKey
from ...models.error_envelope import ErrorEnvelope
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: CreateApiKeyBody | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/keygate/v1/api-keys",
    }

    if not isinstance(body, Unset):
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> CreatedApiKey | ErrorEnvelope | None:
    if response.status_code == 201:
        response_201 = CreatedApiKey.from_dict(response.json())

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

    if response.status_code == 408:
        response_408 = ErrorEnvelope.from_dict(response.json())

        return response_408

    if response.status_code == 409:
        response_409 = ErrorEnvelope.from_dict(response.json())

        return response_409

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
) -> Response[CreatedApiKey | ErrorEnvelope]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: CreateApiKeyBody | Unset = UNSET,
) -> Response[CreatedApiKey | ErrorEnvelope]:
    """Create an API key

     Permissions must be covered by the caller's; omitted, they are the caller's. A key made by a key
    counts its requests and session minutes against every monthly quota of its creator chain too (its
    creator's, that creator's creator's, …), so a child cannot create quota; a key already at the end of
    a chain of 8 creators with quotas cannot create keys (409 `key_limit_reached`). Needs `api-
    keys:write`.

    Args:
        body (CreateApiKeyBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CreatedApiKey | ErrorEnvelope]
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
    body: CreateApiKeyBody | Unset = UNSET,
) -> CreatedApiKey | ErrorEnvelope | None:
    """Create an API key

     Permissions must be covered by the caller's; omitted, they are the caller's. A key made by a key
    counts its requests and session minutes against every monthly quota of its creator chain too (its
    creator's, that creator's creator's, …), so a child cannot create quota; a key already at the end of
    a chain of 8 creators with quotas cannot create keys (409 `key_limit_reached`). Needs `api-
    keys:write`.

    Args:
        body (CreateApiKeyBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CreatedApiKey | ErrorEnvelope
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: CreateApiKeyBody | Unset = UNSET,
) -> Response[CreatedApiKey | ErrorEnvelope]:
    """Create an API key

     Permissions must be covered by the caller's; omitted, they are the caller's. A key made by a key
    counts its requests and session minutes against every monthly quota of its creator chain too (its
    creator's, that creator's creator's, …), so a child cannot create quota; a key already at the end of
    a chain of 8 creators with quotas cannot create keys (409 `key_limit_reached`). Needs `api-
    keys:write`.

    Args:
        body (CreateApiKeyBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CreatedApiKey | ErrorEnvelope]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: CreateApiKeyBody | Unset = UNSET,
) -> CreatedApiKey | ErrorEnvelope | None:
    """Create an API key

     Permissions must be covered by the caller's; omitted, they are the caller's. A key made by a key
    counts its requests and session minutes against every monthly quota of its creator chain too (its
    creator's, that creator's creator's, …), so a child cannot create quota; a key already at the end of
    a chain of 8 creators with quotas cannot create keys (409 `key_limit_reached`). Needs `api-
    keys:write`.

    Args:
        body (CreateApiKeyBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CreatedApiKey | ErrorEnvelope
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
