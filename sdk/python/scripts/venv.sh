#!/usr/bin/env bash
# The virtual environment of sdk/python's tests and tools: made once per Python version and pyproject.toml under
# $HOME/.cache/keygate (an older one for the same Python is removed), with the package's test, starlette and
# django extras; the package itself is reinstalled from this checkout on every call (no dependency resolution:
# a second or two). Prints the environment's path on stdout; everything else goes to stderr.
#
#   venv=$(bash sdk/python/scripts/venv.sh) && "$venv/bin/pytest"
set -euo pipefail
sdk="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
hash=$(sha256sum "$sdk/pyproject.toml" | cut -c1-12)
cache="${HOME}/.cache/keygate"
venv="${cache}/python${version}-${hash}"

if [ ! -f "$venv/.complete" ]; then
  echo "sdk/python: making $venv" >&2
  mkdir -p "$cache"
  find "$cache" -maxdepth 1 -name "python${version}-*" ! -name "python${version}-${hash}" -exec rm -rf {} + >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "${sdk}[test,starlette,django]" >&2
  touch "$venv/.complete"
fi
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall "$sdk" >&2
echo "$venv"
