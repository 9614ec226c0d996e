import datetime
from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_envelope import ErrorEnvelope
from ...models.get_usage_granularity import GetUsageGranularity
from ...models.usage_report import UsageReport
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    granularity: GetUsageGranularity | Unset = "day",
    from_: datetime.date | Unset = UNSET,
    to: datetime.date | Unset = UNSET,
    key_id: str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_granularity: str | Unset = UNSET
    if not isinstance(granularity, Unset):
        json_granularity = granularity

    params["granularity"] = json_granularity

    json_from_: str | Unset = UNSET
    if not isinstance(from_, Unset):
        json_from_ = from_.isoformat()
    params["from"] = json_from_

    json_to: str | Unset = UNSET
    if not isinstance(to, Unset):
        json_to = to.isoformat()
    params["to"] = json_to

    params["keyId"] = key_id

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/keygate/v1/usage",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorEnvelope | UsageReport | None:
    if response.status_code == 200:
        response_200 = UsageReport.from_dict(response.json())

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
) -> Response[ErrorEnvelope | UsageReport]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    granularity: GetUsageGranularity | Unset = "day",
    from_: datetime.date | Unset = UNSET,
    to: datetime.date | Unset = UNSET,
    key_id: str | Unset = UNSET,
) -> Response[ErrorEnvelope | UsageReport]:
    """Request and WebSocket session counts per day or month

     Needs `usage:read`; with `keyId`, authority over that key too (403 otherwise).

    Args:
        granularity (GetUsageGranularity | Unset):  Default: 'day'.
        from_ (datetime.date | Unset):
        to (datetime.date | Unset):
        key_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorEnvelope | UsageReport]
    """

    kwargs = _get_kwargs(
        granularity=granularity,
        from_=from_,
        to=to,
        key_id=key_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    granularity: GetUsageGranularity | Unset = "day",
    from_: datetime.date | Unset = UNSET,
    to: datetime.date | Unset = UNSET,
    key_id: str | Unset = UNSET,
) -> ErrorEnvelope | UsageReport | None:
    """Request and WebSocket session counts per day or month

     Needs `usage:read`; with `keyId`, authority over that key too (403 otherwise).

    Args:
        granularity (GetUsageGranularity | Unset):  Default: 'day'.
        from_ (datetime.date | Unset):
        to (datetime.date | Unset):
        key_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorEnvelope | UsageReport
    """

    return sync_detailed(
        client=client,
        granularity=granularity,
        from_=from_,
        to=to,
        key_id=key_id,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    granularity: GetUsageGranularity | Unset = "day",
    from_: datetime.date | Unset = UNSET,
    to: datetime.date | Unset = UNSET,
    key_id: str | Unset = UNSET,
) -> Response[ErrorEnvelope | UsageReport]:
    """Request and WebSocket session counts per day or month

     Needs `usage:read`; with `keyId`, authority over that key too (403 otherwise).

    Args:
        granularity (GetUsageGranularity | Unset):  Default: 'day'.
        from_ (datetime.date | Unset):
        to (datetime.date | Unset):
        key_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorEnvelope | UsageReport]
    """

    kwargs = _get_kwargs(
        granularity=granularity,
        from_=from_,
        to=to,
        key_id=key_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    granularity: GetUsageGranularity | Unset = "day",
    from_: datetime.date | Unset = UNSET,
    to: datetime.date | Unset = UNSET,
    key_id: str | Unset = UNSET,
) -> ErrorEnvelope | UsageReport | None:
    """Request and WebSocket session counts per day or month

     Needs `usage:read`; with `keyId`, authority over that key too (403 otherwise).

    Args:
        granularity (GetUsageGranularity | Unset):  Default: 'day'.
        from_ (datetime.date | Unset):
        to (datetime.date | Unset):
        key_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorEnvelope | UsageReport
    """

    return (
        await asyncio_detailed(
            client=client,
            granularity=granularity,
            from_=from_,
            to=to,
            key_id=key_id,
        )
    ).parsed
