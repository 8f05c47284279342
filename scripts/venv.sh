#!/usr/bin/env bash
# Create .venv with dncgate installed (editable), plus the test tools when called with "test".
# Installs python3-venv/python3-pip from Debian first if this Python cannot make a venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "scripts/venv.sh: dncgate needs Python >= 3.11 ($PYTHON); on Debian: apt-get install python3" >&2
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && { apt-get update -qq; apt-get install -y -qq python3 python3-venv; }
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip
    else
        echo "scripts/venv.sh: $PYTHON cannot create a venv: install python3-venv (sudo apt-get install python3-venv)" >&2
        exit 1
    fi
fi
# A venv whose creation was interrupted (no pip) is made again, not trusted.
if ! { [ -x .venv/bin/python ] && .venv/bin/python -m pip --version >/dev/null 2>&1; }; then
    rm -rf .venv
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
