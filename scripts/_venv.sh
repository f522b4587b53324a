# Sourced by the scripts: make .venv with the SDK installed (editable) plus the given extras.
# A second argument names another venv folder (run, not sourced, by scripts/test.sh to keep
# one for another Python: PYTHON=/path/to/python3.13 bash scripts/_venv.sh dev .venv-py3.13).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EXTRAS="${1:-dev}"
VENV="${2:-.venv}"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.installed-$EXTRAS-$(sha1sum pyproject.toml | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
  # A failed install fails the script (and leaves no stamp): only grep's "no lines" is fine.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
  touch "$stamp"
fi
