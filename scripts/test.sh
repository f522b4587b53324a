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
.venv/bin/ruff check invokeai_client tests benchmarks examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
