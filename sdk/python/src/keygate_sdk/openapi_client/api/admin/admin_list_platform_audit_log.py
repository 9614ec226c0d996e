from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.audit_entry_page import AuditEntryPage
from ...models.error_envelope import ErrorEnvelope
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["cursor"] = cursor

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/admin/v1/audit-log",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> AuditEntryPage | ErrorEnvelope | None:
    if response.status_code == 200:
        response_200 = AuditEntryPage.from_dict(response.json())

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
) -> Response[AuditEntryPage | ErrorEnvelope]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
) -> Response[AuditEntryPage | ErrorEnvelope]:
    """The platform's audit log, newest first

     Writes that belong to no tenant, each naming its operator (`actor`: `operator:<name>`, or `admin`
    for `admin.token`): the platform's webhook endpoints created (`webhook.created`), enabled again
    (`webhook.enabled`), deleted (`webhook.deleted`), their secret rotated (`webhook.secret_rotated`,
    never the secret itself) and dead letters redelivered (`webhook.redelivered`). Capped at
    `audit.maxEntries`, the oldest dropped. A tenant's own endpoints are audited in that tenant's log.

    Args:
        limit (int | Unset):  Default: 20.
        cursor (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AuditEntryPage | ErrorEnvelope]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
) -> AuditEntryPage | ErrorEnvelope | None:
    """The platform's audit log, newest first

     Writes that belong to no tenant, each naming its operator (`actor`: `operator:<name>`, or `admin`
    for `admin.token`): the platform's webhook endpoints created (`webhook.created`), enabled again
    (`webhook.enabled`), deleted (`webhook.deleted`), their secret rotated (`webhook.secret_rotated`,
    never the secret itself) and dead letters redelivered (`webhook.redelivered`). Capped at
    `audit.maxEntries`, the oldest dropped. A tenant's own endpoints are audited in that tenant's log.

    Args:
        limit (int | Unset):  Default: 20.
        cursor (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AuditEntryPage | ErrorEnvelope
    """

    return sync_detailed(
        client=client,
        limit=limit,
        cursor=cursor,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
) -> Response[AuditEntryPage | ErrorEnvelope]:
    """The platform's audit log, newest first

     Writes that belong to no tenant, each naming its operator (`actor`: `operator:<name>`, or `admin`
    for `admin.token`): the platform's webhook endpoints created (`webhook.created`), enabled again
    (`webhook.enabled`), deleted (`webhook.deleted`), their secret rotated (`webhook.secret_rotated`,
    never the secret itself) and dead letters redelivered (`webhook.redelivered`). Capped at
    `audit.maxEntries`, the oldest dropped. A tenant's own endpoints are audited in that tenant's log.

    Args:
        limit (int | Unset):  Default: 20.
        cursor (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AuditEntryPage | ErrorEnvelope]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
) -> AuditEntryPage | ErrorEnvelope | None:
    """The platform's audit log, newest first

     Writes that belong to no tenant, each naming its operator (`actor`: `operator:<name>`, or `admin`
    for `admin.token`): the platform's webhook endpoints created (`webhook.created`), enabled again
    (`webhook.enabled`), deleted (`webhook.deleted`), their secret rotated (`webhook.secret_rotated`,
    never the secret itself) and dead letters redelivered (`webhook.redelivered`). Capped at
    `audit.maxEntries`, the oldest dropped. A tenant's own endpoints are audited in that tenant's log.

    Args:
        limit (int | Unset):  Default: 20.
        cursor (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AuditEntryPage | ErrorEnvelope
    """

    return (
        await asyncio_detailed(
            client=client,
            limit=limit,
            cursor=cursor,
        )
    ).parsed
