"""Provisions a customer on keygate with the generated client: a tenant (admin API), then a narrower key made
with the tenant's first key, then (when that key holds `session-tokens:write`) a session token minted with it
for a browser or phone (self-service API). Prints the result as JSON.

    python examples/provision.py --admin-url http://keygate-ops:9090 --public-url http://keygate:8080 \
        --admin-token "$KEYGATE_ADMIN_TOKEN" --tenant Acme --permissions calls:read session-tokens:write

The admin call is made synchronously, the self-service ones with asyncio: every generated operation has both.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from keygate_sdk.client import admin_client, self_service_client, unwrap
from keygate_sdk.openapi_client.api.admin import admin_create_tenant
from keygate_sdk.openapi_client.api.self_service import create_api_key, mint_session_token
from keygate_sdk.openapi_client.models import (
    AdminCreateTenantBody,
    CreateApiKeyBody,
    CreatedApiKey,
    MintedSessionToken,
    MintSessionTokenBody,
)


async def create_key(public_url: str, first_key: str, name: str, permissions: list[str]) -> CreatedApiKey:
    async with self_service_client(public_url, first_key) as tenant:
        body = CreateApiKeyBody(name=name, permissions=permissions)
        return unwrap(await create_api_key.asyncio_detailed(client=tenant, body=body))


async def mint_token(public_url: str, key: str, ttl_seconds: int) -> MintedSessionToken:
    async with self_service_client(public_url, key) as backend:
        body = MintSessionTokenBody(ttl_seconds=ttl_seconds)
        return unwrap(await mint_session_token.asyncio_detailed(client=backend, body=body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", required=True, help="keygate's internal listener")
    parser.add_argument("--public-url", required=True, help="keygate's public listener")
    parser.add_argument("--admin-token", required=True)
    parser.add_argument("--tenant", required=True, help="the new tenant's name")
    parser.add_argument("--permissions", nargs="+", default=["calls:read"], help="the new key's permissions")
    parser.add_argument("--token-ttl", type=int, default=60, help="the session token's life, in seconds")
    args = parser.parse_args()

    with admin_client(args.admin_url, args.admin_token) as admin:
        created = unwrap(admin_create_tenant.sync_detailed(client=admin, body=AdminCreateTenantBody(name=args.tenant)))
    key = asyncio.run(create_key(args.public_url, created.api_key.key, f"{args.tenant} backend", args.permissions))
    out = {
        "tenantId": created.tenant.id,
        "firstKeyId": created.api_key.id,
        "keyId": key.id,
        "key": key.key,
        "permissions": key.permissions,
    }
    if "session-tokens:write" in key.permissions:
        token = asyncio.run(mint_token(args.public_url, key.key, args.token_ttl))
        out.update(
            sessionTokenId=token.id, sessionToken=token.token, sessionTokenExpiresAt=token.expires_at.isoformat()
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
