#!/usr/bin/env bash
# Fresh Debian machine -> everything the tests need (apt packages, the cached Asterisk chroot,
# the venv), then lint, types and the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
scripts/venv.sh test
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy --strict"; .venv/bin/mypy
echo "== hadolint"; scripts/lint-dockerfiles.sh
echo "== pytest"; .venv/bin/pytest "$@"
