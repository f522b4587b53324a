#!/usr/bin/env bash
# The double-only tests most tied to the interpreter (event loop, sockets, threads, signals,
# subprocesses, SQLite: runs, pool, CLI jobs, the sync bridge, HTTP connections) on the
# newest supported Python other than the main venv's (pyproject's classifiers: 3.13 here),
# which reports what the main one hides (3.13: ResourceWarning for an unclosed SQLite
# connection; the suite fails on any ResourceWarning). Its venv is built once from PyPI into
# .venv-py<minor> by scripts/_venv.sh. Skipped, saying so, where no such Python runs.
# scripts/test.sh runs it after the main suite; alone: bash scripts/other_python.sh [ARGS]
# (ARGS go to pytest instead of the file list, e.g. tests/test_pool.py -x).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TESTS=(
  tests/test_runs.py tests/test_runs_faults.py tests/test_runs_chaos.py
  tests/test_runs_restart.py tests/test_runs_lean.py tests/test_runs_state.py
  tests/test_runs_workflows.py tests/test_pool.py tests/test_pool_cli.py
  tests/test_pool_scheduler.py tests/test_sync.py tests/test_client.py
  tests/test_http_connections.py tests/test_queue_limit.py tests/test_reliability_socket.py
  tests/test_reliability_interrupts.py tests/test_reliability_runs_end.py
  tests/test_reliability_files.py tests/test_reliability_enqueue.py
)

# "<minor> <path>" of the newest classifier version other than .venv's that runs here: on
# PATH or under pyenv's versions/ (pyenv's shims exist for versions not selected: run it).
other_python() {
  local main minor candidate
  main=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null \
    || true)
  for minor in $(sed -n 's/.*"Programming Language :: Python :: \(3\.[0-9]*\)".*/\1/p' \
      pyproject.toml | sort -rV); do
    [[ "$minor" == "$main" ]] && continue
    for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$minor".[0-9]*/bin/python3 \
        2>/dev/null | sort -rV) "python$minor"; do
      if "$candidate" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$minor'" \
          >/dev/null 2>&1; then
        echo "$minor $candidate"
        return
      fi
    done
  done
}

found=$(other_python)
if [[ -z "$found" ]]; then
  echo "skipped: the double-only tests on another Python (none of pyproject's versions but" \
    "the main venv's runs here; looked on PATH and in pyenv's versions/)" >&2
  exit 0
fi
read -r minor python <<<"$found"
started=$SECONDS
PYTHON="$python" bash scripts/_venv.sh dev ".venv-py$minor"
if [[ $# -eq 0 ]]; then set -- "${TESTS[@]}"; fi
# (Not the 500 enqueues through nginx: ~2 min for what the main suite covers already.)
".venv-py$minor/bin/python" -m pytest -q -p no:cacheprovider -m "not real and not compat" \
  -k "not test_500_enqueues_through_a_real_proxy" "$@"
echo "double-only tests on Python $minor ($python): $((SECONDS - started)) s" >&2
