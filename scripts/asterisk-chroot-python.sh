#!/usr/bin/env bash
# Install Python and this checkout of dncgate inside the cached Asterisk chroot, so Asterisk
# (which runs inside the chroot) can start classic AGI: AGI(/opt/dncgate/bin/dncgate-agi,...).
#
#   scripts/asterisk-chroot-python.sh          install/refresh if needed, print the venv path
#   scripts/asterisk-chroot-python.sh --check  exit 0 if the venv is current, 1 if not
#
# Environment:
#   DNCGATE_ASTERISK_CHROOT  chroot directory (default /var/cache/dncgate/asterisk-sid)
#   DNCGATE_CHROOT_VENV      venv path inside the chroot (default /opt/dncgate)
#
# Steps, each done once: apt-get install python3 python3-venv inside the chroot; a venv at
# /opt/dncgate; the checkout built into a wheel on the host (.venv/bin/pip wheel --no-deps) and
# installed into that venv with its dependencies from PyPI: downloaded on the host by the host's
# pip (so its index, proxy and CA settings apply) as wheels for the chroot's Python, pinned to
# the host venv's versions, then installed offline inside the chroot. A stamp file records the hash of the checkout's package sources; when
# they change, only the dncgate wheel is rebuilt and reinstalled. Runs under the same flock as
# scripts/asterisk-chroot.sh, so it never races a chroot build (and never starts one: it calls
# asterisk-chroot.sh, which is instant when the chroot is already built).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CHROOT="${DNCGATE_ASTERISK_CHROOT:-/var/cache/dncgate/asterisk-sid}"
VENV="${DNCGATE_CHROOT_VENV:-/opt/dncgate}"
STAMP="$CHROOT/.dncgate-python-complete"
STAMP_VERSION="1"
HOST_PIP="$REPO/.venv/bin/pip"

die() { echo "asterisk-chroot-python: ERROR: $*" >&2; exit 1; }
log() { echo "asterisk-chroot-python: $*" >&2; }

source_hash() {
  # the package as installed: its sources and the project metadata
  (cd "$REPO" && find dncgate -type f \( -name '*.py' -o -name 'py.typed' -o -path 'dncgate/demo/*' \) -print0 \
     | LC_ALL=C sort -z | xargs -0 sha256sum; sha256sum pyproject.toml) | sha256sum | cut -d' ' -f1
}

HASH="$(source_hash)"
stamp_base_ok() { [[ -f "$STAMP" ]] && [[ "$(cut -d' ' -f1 "$STAMP")" == "$STAMP_VERSION" ]] && [[ -x "$CHROOT$VENV/bin/dncgate-agi" ]]; }
stamp_ok() { stamp_base_ok && grep -q " source=$HASH" "$STAMP"; }

case "${1:-}" in
  --check) stamp_ok && { echo "$CHROOT$VENV"; exit 0; }; exit 1 ;;
  "") ;;
  *) die "unknown argument: $1 (use --check)" ;;
esac

if stamp_ok; then
  echo "$CHROOT$VENV"
  exit 0
fi

[[ "$(id -u)" == 0 ]] || die "must run as root (chroot needs it)"
[[ -x "$HOST_PIP" ]] || die "$HOST_PIP not found: create the venv first (python3 -m venv .venv && .venv/bin/pip install -e '.[test]')"
"$HERE/asterisk-chroot.sh" >/dev/null || die "the Asterisk chroot could not be built (scripts/asterisk-chroot.sh)"

# The same lock as scripts/asterisk-chroot.sh: never install while the chroot is being (re)built.
LOCK="$(dirname "$CHROOT")/.$(basename "$CHROOT").lock"
exec 9>"$LOCK"
if ! flock -n 9; then
  log "another build of $CHROOT is running; waiting for it"
  flock -w 1800 9 || die "timed out waiting for the lock $LOCK"
fi
HASH="$(source_hash)"
if stamp_ok; then
  echo "$CHROOT$VENV"
  exit 0
fi

# chroot with a clean environment (the host's PIP_* settings point at host paths) and /proc
# mounted in a private mount namespace that vanishes with the command.
in_chroot() {
  unshare --mount --propagation private -- sh -c 'mount -t proc proc "$1/proc" && shift && exec chroot "$@"' \
    sh "$CHROOT" "$CHROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

START=$(date +%s)
WORK="$(mktemp -d "$CHROOT/tmp/dncgate-python.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
INSIDE="/tmp/$(basename "$WORK")"

if ! stamp_base_ok; then
  if ! in_chroot sh -c 'command -v python3 >/dev/null && python3 -c "import venv, ensurepip"' 2>/dev/null; then
    # Chroots stamped before python3 was in scripts/asterisk-chroot.sh's package list.
    log "installing python3 python3-venv inside $CHROOT"
    in_chroot dpkg --configure -a >&2 || true  # finish an install an earlier run was killed in
    in_chroot apt-get -o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0 -q update >&2 \
      || die "apt-get update failed inside the chroot"
    in_chroot apt-get -o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0 -q -y --no-install-recommends \
      install python3 python3-venv >&2 || die "apt-get install python3 python3-venv failed inside the chroot"
    in_chroot apt-get clean
  fi
  log "creating the venv $VENV inside the chroot"
  rm -rf "${CHROOT:?}$VENV"
  in_chroot python3 -m venv "$VENV" >&2 || die "python3 -m venv $VENV failed inside the chroot"
fi

log "building the dncgate wheel from $REPO"
"$HOST_PIP" wheel -q --no-deps -w "$WORK" "$REPO" >"$WORK/wheel.log" 2>&1 \
  || { tail -n 30 "$WORK/wheel.log" >&2; die "pip wheel failed"; }
WHEEL="$(cd "$WORK" && ls dncgate-*.whl | head -n1)"
[[ -n "$WHEEL" ]] || die "no wheel built"

# Dependencies are fetched on the host (its pip configuration: index, proxy, CA certificates),
# as wheels for the chroot's Python, pinned to the host venv's versions; the chroot installs
# them offline.
PYTAG="$(in_chroot "$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
"$REPO/.venv/bin/python" -m pip freeze --exclude-editable 2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' > "$WORK/constraints.txt" || true
download() {
  "$HOST_PIP" download -q --only-binary=:all: --python-version "$PYTAG" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 "$@" -d "$WORK" "$WORK/$WHEEL" >"$WORK/download.log" 2>&1
}
if ! download -c "$WORK/constraints.txt"; then
  log "the host venv's pinned versions have no wheels for Python $PYTAG; downloading the newest instead"
  download || { grep -v 'is ignored' "$WORK/download.log" | tail -n 30 >&2; die "pip download of dncgate's dependencies failed"; }
fi

log "installing $WHEEL and its dependencies into $VENV"
in_chroot "$VENV/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$INSIDE" \
  --force-reinstall --no-deps "$INSIDE/$WHEEL" >&2 || die "pip install $WHEEL failed inside the chroot"
in_chroot "$VENV/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$INSIDE" "$INSIDE/$WHEEL" >&2 \
  || die "pip install of dncgate's dependencies failed inside the chroot"
in_chroot "$VENV/bin/python" -c 'import dncgate.agi.classic, hiredis, redis, phonenumbers' \
  || die "dncgate does not import inside the chroot"
[[ -x "$CHROOT$VENV/bin/dncgate-agi" ]] || die "$VENV/bin/dncgate-agi missing after install"

PYVER="$(in_chroot "$VENV/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
echo "$STAMP_VERSION source=$HASH python=$PYVER built=$(date -u +%FT%TZ) seconds=$(( $(date +%s) - START ))" > "$STAMP"
log "dncgate installed in $CHROOT$VENV (python $PYVER) in $(( $(date +%s) - START ))s"
echo "$CHROOT$VENV"
