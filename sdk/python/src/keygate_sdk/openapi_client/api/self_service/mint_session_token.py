from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_envelope import ErrorEnvelope
from ...models.mint_session_token_body import MintSessionTokenBody
from ...models.minted_session_token import MintedSessionToken
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: MintSessionTokenBody | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/keygate/v1/session-tokens",
    }

    if not isinstance(body, Unset):
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorEnvelope | MintedSessionToken | None:
    if response.status_code == 201:
        response_201 = MintedSessionToken.from_dict(response.json())

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
) -> Response[ErrorEnvelope | MintedSessionToken]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: MintSessionTokenBody | Unset = UNSET,
) -> Response[ErrorEnvelope | MintedSessionToken]:
    """Mint a session token for a browser or phone

     A short-lived, signed credential (`kg_st_...`) narrowed to at most the calling key's scope, for a
    client that must never hold a key. It is accepted as `Authorization: Bearer`, and on WebSocket
    upgrades as `?token=` or the subprotocol pair `keygate.token, <token>`; everything it does counts
    against the calling key. Needs a private key holding `session-tokens:write`; a token asking for more
    than the key holds is refused 403.

    Args:
        body (MintSessionTokenBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorEnvelope | MintedSessionToken]
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
    body: MintSessionTokenBody | Unset = UNSET,
) -> ErrorEnvelope | MintedSessionToken | None:
    """Mint a session token for a browser or phone

     A short-lived, signed credential (`kg_st_...`) narrowed to at most the calling key's scope, for a
    client that must never hold a key. It is accepted as `Authorization: Bearer`, and on WebSocket
    upgrades as `?token=` or the subprotocol pair `keygate.token, <token>`; everything it does counts
    against the calling key. Needs a private key holding `session-tokens:write`; a token asking for more
    than the key holds is refused 403.

    Args:
        body (MintSessionTokenBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorEnvelope | MintedSessionToken
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: MintSessionTokenBody | Unset = UNSET,
) -> Response[ErrorEnvelope | MintedSessionToken]:
    """Mint a session token for a browser or phone

     A short-lived, signed credential (`kg_st_...`) narrowed to at most the calling key's scope, for a
    client that must never hold a key. It is accepted as `Authorization: Bearer`, and on WebSocket
    upgrades as `?token=` or the subprotocol pair `keygate.token, <token>`; everything it does counts
    against the calling key. Needs a private key holding `session-tokens:write`; a token asking for more
    than the key holds is refused 403.

    Args:
        body (MintSessionTokenBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorEnvelope | MintedSessionToken]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: MintSessionTokenBody | Unset = UNSET,
) -> ErrorEnvelope | MintedSessionToken | None:
    """Mint a session token for a browser or phone

     A short-lived, signed credential (`kg_st_...`) narrowed to at most the calling key's scope, for a
    client that must never hold a key. It is accepted as `Authorization: Bearer`, and on WebSocket
    upgrades as `?token=` or the subprotocol pair `keygate.token, <token>`; everything it does counts
    against the calling key. Needs a private key holding `session-tokens:write`; a token asking for more
    than the key holds is refused 403.

    Args:
        body (MintSessionTokenBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorEnvelope | MintedSessionToken
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
