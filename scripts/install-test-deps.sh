#!/usr/bin/env bash
# Install what dncgate's test suite needs on Debian/Ubuntu (CI and developer machines), then
# build or refresh the cached Asterisk chroot for the end-to-end lab.
#
#   sudo scripts/install-test-deps.sh             packages + chroot
#   sudo scripts/install-test-deps.sh --no-chroot packages only
#   sudo scripts/install-test-deps.sh --refresh   packages + rebuild the chroot (newer Asterisk)
#
# Idempotent and non-interactive. Needs root and network access to the Debian mirrors.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
die() { echo "install-test-deps: ERROR: $*" >&2; exit 1; }
log() { echo "install-test-deps: $*" >&2; }

BUILD_CHROOT=1
CHROOT_ARGS=()
case "${1:-}" in
  --no-chroot) BUILD_CHROOT=0 ;;
  --refresh) CHROOT_ARGS=(--rebuild) ;;
  "") ;;
  *) die "unknown argument: $1 (use --no-chroot or --refresh)" ;;
esac

[[ "$(id -u)" == 0 ]] || die "run as root (apt-get, debootstrap and the lab's chroot need it)"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian/Ubuntu only"

PACKAGES=(
  redis-server   # store tests start a real redis-server
  sip-tester     # sipp: caller and callee of the e2e lab
  espeak-ng sox  # prompts/generate.sh
  prometheus     # promtool: checks the shipped alerting rules (tests/ops/test_metrics.py)
  chromium chromium-driver  # the console's browser tests (tests/console/test_console_browser.py), headless
  fonts-wqy-microhei        # ... and a CJK font, so their screenshots of the Chinese pages show the text
  debootstrap    # scripts/asterisk-chroot.sh
  util-linux     # unshare, mount (the lab's mount namespace)
  coreutils      # chroot
  ca-certificates
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done

export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
else
  log "packages already installed: ${PACKAGES[*]}"
fi

# Debian's redis-server package starts a system instance; the tests start their own on a free
# port and do not need it, so leave it as the package configured it. The same goes for the
# Prometheus server the prometheus package starts: the tests only run its promtool.

for tool in sipp espeak-ng sox debootstrap unshare chroot redis-server promtool chromium chromedriver; do
  command -v "$tool" >/dev/null || die "$tool still missing after installation"
done

if ((BUILD_CHROOT)); then
  log "building/refreshing the Asterisk chroot (first build takes about a minute)"
  "$HERE/asterisk-chroot.sh" "${CHROOT_ARGS[@]}" >/dev/null || die "the Asterisk chroot could not be built (see above)"
  log "Asterisk chroot ready: $("$HERE/asterisk-chroot.sh" --check)"
  # python3 + a venv with this checkout inside the chroot, for the classic-AGI e2e tests. It
  # builds the wheel with .venv; without .venv yet (scripts/test.sh makes it next) the e2e
  # tests run it on first use.
  if [[ -x "$HERE/../.venv/bin/pip" ]]; then
    "$HERE/asterisk-chroot-python.sh" >/dev/null || die "dncgate could not be installed inside the Asterisk chroot (see above)"
    log "dncgate for classic AGI inside the chroot: $("$HERE/asterisk-chroot-python.sh" --check)"
  else
    log "no .venv yet: the classic-AGI e2e tests install dncgate inside the chroot on first use"
  fi
fi
log "done"
