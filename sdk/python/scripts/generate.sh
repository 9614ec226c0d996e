#!/usr/bin/env bash
# `npm run sdk:python:generate`: regenerates keygate_sdk.openapi_client from the OpenAPI document (sources).
set -euo pipefail
venv=$(bash "$(dirname "$0")/venv.sh")
exec "$venv/bin/python" "$(dirname "$0")/generate_client.py" "$@"
