#!/usr/bin/env bash
# The main job: run a real workflow end to end (a sweep of the bundled model-free demo,
# live progress, the images saved under ./outputs/<timestamp>/ of the current folder).
#   bash scripts/main.sh                 start a local InvokeAI (installed on first use) and run
#   bash scripts/main.sh http://h:9090   run against your own server
# Any other options go to `invokeai-client run` (see docs/cli.md), e.g.
#   bash scripts/main.sh --sweep "Seed=1..16" --out renders
set -euo pipefail
here="$PWD"
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" cli
cli="$PWD/.venv/bin/invokeai-client"
cd "$here"
if [[ $# -ge 1 && "$1" != -* ]]; then
  url="$1"; shift
  exec "$cli" run --url "$url" "$@"
fi
exec "$cli" run "$@"
