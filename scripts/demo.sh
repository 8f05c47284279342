#!/usr/bin/env bash
# Fresh Debian machine -> a running gate on its embedded SQLite store with a demo list.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
exec .venv/bin/dncgate serve --demo "$@"
