#!/usr/bin/env bash
# The compatibility matrix: the conformance subset (tests/test_compat_conformance.py, marker
# `compat`) against the real server of every InvokeAI version with a shipped lock (and the
# double imitating it), one version at a time; then docs/compatibility.md is written from the
# results.
#   bash scripts/compat.sh                 every version (installs what is missing: ~7 GB and
#                                          a few minutes each, cached in ~/.cache/invokeai-client)
#   bash scripts/compat.sh 5.15.0 6.14.2   only these
# Results (JUnit XML, install/start failures) go to .compat-results/; exit 1 if any failed.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" dev
out=.compat-results
mkdir -p "$out"
if [[ $# -gt 0 ]]; then
  versions=("$@")
else
  mapfile -t versions < <(.venv/bin/python -m invokeai_client.testing.local versions | cut -d' ' -f1)
fi
status=0
started=$(date +%s)
for version in "${versions[@]}"; do
  echo "=== InvokeAI $version"
  rm -f "$out/$version.xml" "$out/$version.error"
  begun=$(date +%s)
  if ! .venv/bin/python -m invokeai_client.testing.local install --version "$version" \
      >"$out/$version.install.log" 2>&1; then
    { echo "install failed:"; tail -5 "$out/$version.install.log"; } > "$out/$version.error"
    status=1; continue
  fi
  INVOKEAI_TEST_VERSION=$version nice -n 10 .venv/bin/python -m pytest -q -p no:cacheprovider \
    -m compat tests/test_compat_conformance.py --junitxml="$out/$version.xml" \
    > "$out/$version.log" 2>&1
  code=$?
  tail -1 "$out/$version.log"
  if [[ $code -ne 0 ]]; then
    status=1
    if ! grep -q "<testcase" "$out/$version.xml" 2>/dev/null; then
      { echo "server did not start or tests did not run:"; grep -m3 -E "Error|error" \
          "$out/$version.log"; } > "$out/$version.error"
    fi
  fi
  echo "$(( $(date +%s) - begun ))" > "$out/$version.seconds"
done
total=$(( $(date +%s) - started ))
echo "matrix wall time: ${total}s"
echo "$total" > "$out/wall.seconds"
.venv/bin/python scripts/compat_table.py "$out" docs/compatibility.md
exit $status
