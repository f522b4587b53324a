#!/usr/bin/env bash
# The main job: run a real workflow end to end.
#   bash scripts/main.sh                 start a local InvokeAI (installed on first use) and run
#   bash scripts/main.sh http://h:9090   run against your own server
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" cli
if [[ $# -ge 1 && "$1" != -* ]]; then
  url="$1"; shift
  exec .venv/bin/invokeai-client run --url "$url" "$@"
fi
exec .venv/bin/invokeai-client run "$@"
