"""Regenerates keygate_sdk.openapi_client from keygate's OpenAPI document.

    python sdk/python/scripts/generate_client.py            # write src/keygate_sdk/openapi_client
    python sdk/python/scripts/generate_client.py --check    # exit 1 when the committed client is stale
    python sdk/python/scripts/generate_client.py --url http://127.0.0.1:8080/keygate/v1/openapi.json

The document is the one `GET /keygate/v1/openapi.json` serves. Without --url it is built from the repository's
own sources (src/api/openapi.ts, with Node), so no server is needed. openapi-python-client (pinned in the
package's `test` extra, so the output does not change under a developer's feet) turns it into the client;
ruff then formats it with the package's own settings.

One change is made to the document first: every error response is read as the shared `Error` envelope with a
plain string code. The document narrows each response to the codes it can carry, which makes the generator
emit three classes per error response of every operation (some 800 modules); and a code enum would make an
older client fail to read an error that a newer keygate added. The codes stay listed in each response's
description and in the envelope's.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

SDK = Path(__file__).resolve().parent.parent
REPO = SDK.parent.parent
TARGET = SDK / "src" / "keygate_sdk" / "openapi_client"
CONFIG = SDK / "openapi-python-client.yaml"

BUILD_DOCUMENT = """
import { readFileSync } from 'node:fs';
import { buildOpenApi } from './src/api/openapi.ts';
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
process.stdout.write(JSON.stringify(buildOpenApi(version)));
"""


def document_from_sources() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        sys.exit("generate_client: node (>= 22.15) is needed to build the OpenAPI document from src/api/openapi.ts")
    out = subprocess.run(
        [node, "--input-type=module", "-e", BUILD_DOCUMENT], cwd=REPO, check=True, capture_output=True, text=True
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def document_from_url(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as res:  # noqa: S310 (an operator-given URL)
        doc: dict[str, Any] = json.load(res)
    return doc


def with_plain_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx response as the shared error envelope; the envelope's code as a plain string."""
    doc = copy.deepcopy(doc)
    # Named ErrorEnvelope here: a class `Error` with a field `error` makes the generator shadow one with the other.
    schemas = doc["components"]["schemas"]
    schemas["ErrorEnvelope"] = schemas.pop("Error")
    error_ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for name, response in doc["components"].get("responses", {}).items():
        if "content" in response:
            doc["components"]["responses"][name] = {**response, "content": {"application/json": {"schema": error_ref}}}
    for item in doc["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if status[0] in "45" and "content" in response:
                    response["content"] = {"application/json": {"schema": error_ref}}
    code = schemas["ErrorEnvelope"]["properties"]["error"]["properties"]["code"]
    codes = code.pop("enum", [])
    code["description"] = f"The machine code, each with its fixed status: one of {', '.join(codes)}, or one added later"
    return doc


def generate(doc: dict[str, Any], into: Path) -> None:
    """Runs openapi-python-client and ruff; `into` must not exist."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "openapi.json"
        path.write_text(json.dumps(doc, indent=2))
        bin_dir = Path(sys.executable).parent
        generator = bin_dir / "openapi-python-client"
        subprocess.run(
            [
                str(generator),
                "generate",
                "--path",
                str(path),
                "--meta",
                "none",
                "--config",
                str(CONFIG),
                "--output-path",
                str(into),
            ],
            check=True,
            capture_output=True,
        )
    ruff = [str(bin_dir / "ruff"), "--config", str(SDK / "pyproject.toml")]
    subprocess.run([*ruff, "check", "--fix-only", "--quiet", str(into)], check=True)
    subprocess.run([*ruff, "format", "--quiet", str(into)], check=True)


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def differences(generated: Path, committed: Path) -> list[str]:
    """The files (relative paths) that are missing, extra or different in `committed`."""
    a, b = files(generated), files(committed) if committed.exists() else {}
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed client instead of writing it")
    parser.add_argument("--url", help="read the document from a running keygate instead of the sources")
    args = parser.parse_args()
    doc = with_plain_errors(document_from_url(args.url) if args.url else document_from_sources())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "openapi_client"
        generate(doc, out)
        if args.check:
            stale = differences(out, TARGET)
            if stale:
                print(
                    "generate_client: the committed client is stale; run `npm run sdk:python:generate`:",
                    file=sys.stderr,
                )
                for name in stale:
                    print(f"  {name}", file=sys.stderr)
                return 1
            return 0
        if TARGET.exists():
            shutil.rmtree(TARGET)
        shutil.copytree(out, TARGET, ignore=shutil.ignore_patterns("__pycache__"))
    print(f"generate_client: wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
