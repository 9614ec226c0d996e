from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_envelope import ErrorEnvelope
from ...models.keys_usage import KeysUsage
from ...types import UNSET, Response


def _get_kwargs(
    tenant_id: str,
    *,
    period: str,
    key_ids: str,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["period"] = period

    params["keyIds"] = key_ids

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/admin/v1/tenants/{tenant_id}/keys-usage".format(
            tenant_id=quote(str(tenant_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorEnvelope | KeysUsage | None:
    if response.status_code == 200:
        response_200 = KeysUsage.from_dict(response.json())

        return response_200

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
) -> Response[ErrorEnvelope | KeysUsage]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    tenant_id: str,
    *,
    client: AuthenticatedClient,
    period: str,
    key_ids: str,
) -> Response[ErrorEnvelope | KeysUsage]:
    """Usage of up to 100 of a tenant's keys in one day or month (the console's quota-use column)

    Args:
        tenant_id (str):
        period (str):
        key_ids (str): Comma-separated key ids, at most 100

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorEnvelope | KeysUsage]
    """

    kwargs = _get_kwargs(
        tenant_id=tenant_id,
        period=period,
        key_ids=key_ids,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    tenant_id: str,
    *,
    client: AuthenticatedClient,
    period: str,
    key_ids: str,
) -> ErrorEnvelope | KeysUsage | None:
    """Usage of up to 100 of a tenant's keys in one day or month (the console's quota-use column)

    Args:
        tenant_id (str):
        period (str):
        key_ids (str): Comma-separated key ids, at most 100

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorEnvelope | KeysUsage
    """

    return sync_detailed(
        tenant_id=tenant_id,
        client=client,
        period=period,
        key_ids=key_ids,
    ).parsed


async def asyncio_detailed(
    tenant_id: str,
    *,
    client: AuthenticatedClient,
    period: str,
    key_ids: str,
) -> Response[ErrorEnvelope | KeysUsage]:
    """Usage of up to 100 of a tenant's keys in one day or month (the console's quota-use column)

    Args:
        tenant_id (str):
        period (str):
        key_ids (str): Comma-separated key ids, at most 100

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorEnvelope | KeysUsage]
    """

    kwargs = _get_kwargs(
        tenant_id=tenant_id,
        period=period,
        key_ids=key_ids,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    tenant_id: str,
    *,
    client: AuthenticatedClient,
    period: str,
    key_ids: str,
) -> ErrorEnvelope | KeysUsage | None:
    """Usage of up to 100 of a tenant's keys in one day or month (the console's quota-use column)

    Args:
        tenant_id (str):
        period (str):
        key_ids (str): Comma-separated key ids, at most 100

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorEnvelope | KeysUsage
    """

    return (
        await asyncio_detailed(
            tenant_id=tenant_id,
            client=client,
            period=period,
            key_ids=key_ids,
        )
    ).parsed
