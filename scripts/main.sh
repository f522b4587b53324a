#!/usr/bin/env bash
# The main job: text to image end to end (one prompt over 8 seeds in ONE batch, live step
# progress, the images saved under ./outputs/<timestamp>/ of the current folder).
#   bash scripts/main.sh                 start a local InvokeAI (installed on first use) with the
#                                        tiny RANDOM-WEIGHT test models (images are noise; the
#                                        machinery is real) and generate with them
#   bash scripts/main.sh http://h:9090   generate with your server's main model (SD1.x, SDXL or
#                                        FLUX); a server without one runs the model-free demo
#   bash scripts/main.sh --demo [URL]    the model-free demo workflow (a noise sweep) instead
# Any other options go to `invokeai-client generate` (or `run` with --demo; see docs/cli.md):
#   bash scripts/main.sh http://h:9090 "a red fox" --model sdxl --seeds 1..4 --steps 30
set -euo pipefail
here="$PWD"
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" cli
cli="$PWD/.venv/bin/invokeai-client"
cd "$here"
command=(generate --or-demo)
if [[ $# -ge 1 && "$1" == "--demo" ]]; then
  command=(run); shift
fi
if [[ $# -ge 1 && "$1" == http* ]]; then
  url="$1"; shift
  exec "$cli" "${command[@]}" --url "$url" "$@"
fi
if [[ "${command[0]}" == generate && -z "${INVOKEAI_URL:-}" ]]; then
  # The local server's tiny models: small images, few steps (a few seconds in all on a CPU).
  exec "$cli" "${command[@]}" --width 128 --height 128 --steps 8 "$@"
fi
exec "$cli" "${command[@]}" "$@"
