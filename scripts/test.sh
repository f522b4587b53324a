#!/usr/bin/env bash
# The test command: installs everything the tests need, then runs lint, types and the suite.
# The suite starts a real InvokeAI 6.14.2 (installed once into ~/.cache/invokeai-client) and
# the in-process double. INVOKEAI_TEST_URL=http://host:port uses an existing server instead.
# Extra arguments go to pytest (e.g. bash scripts/test.sh -k boards).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" dev
if [[ -z "${INVOKEAI_TEST_URL:-}" ]]; then
  .venv/bin/python -m invokeai_client.testing.local install >/dev/null
fi
# Headless Chromium for the web example's browser test (Debian's package), once.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [[ "$(id -u)" == 0 ]]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || echo "warning: could not install chromium; the browser test skips" >&2
fi
# nginx (Debian's package) for the reverse-proxy reliability test, once.
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]] \
    && command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) \
    >/dev/null 2>&1 || echo "warning: could not install nginx; the proxy test skips" >&2
fi
.venv/bin/ruff check invokeai_client tests benchmarks examples scripts
.venv/bin/mypy
# The docs site: a broken reference or link fails here (tests/test_docs.py reads the build).
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
started=$SECONDS
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet -d "$site"
echo "mkdocs build --strict: $((SECONDS - started)) s" >&2
INVOKEAI_DOCS_SITE="$site" .venv/bin/python -m pytest "$@"
# The conformance subset on the oldest supported InvokeAI too (the newest ran above as the
# main suite's server): its own venv, installed once from its lock (~7 GB, a few minutes from
# empty), then about two minutes. Only for a full run (no pytest arguments). The whole
# matrix is `bash scripts/compat.sh` (docs/compatibility.md).
if [[ $# -eq 0 && -z "${INVOKEAI_TEST_URL:-}" ]]; then
  oldest=$(.venv/bin/python -m invokeai_client.testing.local versions | awk 'NR == 1 {print $1}')
  started=$SECONDS
  .venv/bin/python -m invokeai_client.testing.local install --version "$oldest" >/dev/null
  INVOKEAI_TEST_VERSION="$oldest" .venv/bin/python -m pytest -q -p no:cacheprovider -m compat \
    tests/test_compat_conformance.py
  echo "conformance subset on InvokeAI $oldest: $((SECONDS - started)) s" >&2
fi
# The interpreter-bound double-only tests on the newest other supported Python (3.13 here),
# its venv built once; a message, no failure, where none runs. Only for a full run.
if [[ $# -eq 0 ]]; then
  bash scripts/other_python.sh
fi
