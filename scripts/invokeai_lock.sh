#!/usr/bin/env bash
# Make the pinned lock of one InvokeAI release for the local-server harness:
#   bash scripts/invokeai_lock.sh 5.15.0 2025-07-01
# Installs that release into a scratch venv (under $SCRATCH, default ~/.cache/invokeai-client/
# scratch), resolving its open-ended dependencies as of the given date (pip
# --uploaded-prior-to), with the torch that lies on this machine's disk (2.14.1 + torchvision
# 0.29.1) instead of the release's own torch pin when TORCH=disk (the default), then writes
# `pip freeze` to invokeai_client/testing/locks/invokeai-<version>.lock.txt.
# The harness installs a lock with --no-deps, so the lock alone decides what is installed.
set -euo pipefail
version=$1
before=${2:?give the date to resolve open-ended dependencies at, e.g. 2025-07-01}
torch=${TORCH:-disk}
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=${SCRATCH:-$HOME/.cache/invokeai-client/scratch}/lock-$version
out=$here/invokeai_client/testing/locks/invokeai-$version.lock.txt
rm -rf "$scratch"
python3.11 -m venv "$scratch"
pip=("$scratch/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q -U "pip>=26"
start=$(date +%s)
if [ "$torch" = disk ]; then
  # the release's own requirements, minus torch and torchvision, which come from disk
  "${pip[@]}" install -q torch==2.14.1 torchvision==0.29.1
  "${pip[@]}" install -q --no-deps "invokeai==$version"
  meta=$("$scratch/bin/python" - "$version" <<'PY'
import sys, importlib.metadata as m
reqs = m.requires("invokeai") or []
keep = [r for r in reqs if "extra ==" not in r and not r.split(";")[0].strip().lower().startswith(("torch~", "torch=", "torch<", "torch>", "torch ", "torchvision"))
        and r.split(";")[0].strip().lower() not in ("torch", "torchvision")]
print("\n".join(keep))
PY
)
  printf '%s\n' "$meta" > "$scratch/reqs.txt"
  printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$scratch/constraints.txt"
  "${pip[@]}" install -q --uploaded-prior-to "$before" -c "$scratch/constraints.txt" -r "$scratch/reqs.txt"
else
  "${pip[@]}" install -q --uploaded-prior-to "$before" "invokeai==$version"
fi
echo "install: $(( $(date +%s) - start )) s, venv $(du -sh "$scratch" | cut -f1)"
mkdir -p "$(dirname "$out")"
{ echo "# invokeai $version: pip freeze of a scratch venv made by scripts/invokeai_lock.sh"
  echo "# (dependencies as of $before, torch: $torch); installed with pip --no-deps"
  "${pip[@]}" freeze --exclude pip --exclude setuptools --exclude wheel | grep -v '^-e '
} > "$out"
echo "wrote $out ($(grep -vc '^#' "$out") pins)"
