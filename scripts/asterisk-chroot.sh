#!/usr/bin/env bash
# Build (once) and cache a Debian sid chroot with Asterisk for dncgate's end-to-end lab.
#
#   scripts/asterisk-chroot.sh            build if missing, print the chroot path
#   scripts/asterisk-chroot.sh --rebuild  build a fresh chroot and swap it in when complete
#                                         (do not run it while e2e tests are running)
#   scripts/asterisk-chroot.sh --check    exit 0 if the cached chroot is complete, 1 if not
#
# Environment:
#   DNCGATE_ASTERISK_CHROOT  chroot directory (default /var/cache/dncgate/asterisk-sid)
#   DNCGATE_DEBIAN_MIRROR    Debian mirror URL; default: the first Debian mirror apt on this
#                            machine already uses (from /etc/apt/sources.list*), else deb.debian.org
#   DNCGATE_DEBIAN_SUITE     default sid (Debian stable has no Asterisk package)
#
# The chroot is only a filesystem (debootstrap creates the /dev nodes Asterisk needs: null,
# urandom, ...). The test harness (tests/e2e/lab.py) runs `asterisk -f` inside it as root, in a
# private mount namespace where it mounts /proc, with a per-session configuration directory.
# A stamp file marks a finished build, so a second run returns immediately.
set -euo pipefail

CHROOT="${DNCGATE_ASTERISK_CHROOT:-/var/cache/dncgate/asterisk-sid}"
SUITE="${DNCGATE_DEBIAN_SUITE:-sid}"
STAMP="$CHROOT/.dncgate-chroot-complete"
# Bump when the package list below changes so cached chroots get refreshed.
STAMP_VERSION="2"
# python3 and python3-venv: classic AGI runs dncgate-agi inside the chroot (scripts/asterisk-chroot-python.sh
# adds the venv); installed here, with the rest, so the stamped chroot is never changed by apt later.
PACKAGES=(asterisk asterisk-core-sounds-en asterisk-core-sounds-en-wav asterisk-modules ca-certificates
          python3 python3-venv)

die() { echo "asterisk-chroot: ERROR: $*" >&2; exit 1; }
log() { echo "asterisk-chroot: $*" >&2; }

stamp_ok() { [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$STAMP_VERSION "* ]] && [[ -x "$CHROOT/usr/sbin/asterisk" ]]; }

case "${1:-}" in
  --check) stamp_ok && { echo "$CHROOT"; exit 0; }; exit 1 ;;
  --rebuild) REBUILD=1 ;;
  "") REBUILD=0 ;;
  *) die "unknown argument: $1 (use --check or --rebuild)" ;;
esac

if [[ "$REBUILD" == 0 ]] && stamp_ok; then
  echo "$CHROOT"
  exit 0
fi

[[ "$(id -u)" == 0 ]] || die "must run as root (debootstrap and chroot need it)"
command -v flock >/dev/null || die "flock is not installed (util-linux)"

# One build at a time: test sessions running in parallel all call this script.
mkdir -p "$(dirname "$CHROOT")"
LOCK="$(dirname "$CHROOT")/.$(basename "$CHROOT").lock"
exec 9>"$LOCK"
if ! flock -n 9; then
  log "another build of $CHROOT is running; waiting for it"
  flock -w 1800 9 || die "timed out waiting for the other build (lock $LOCK)"
fi
if [[ "$REBUILD" == 0 ]] && stamp_ok; then  # built by the process we waited for
  echo "$CHROOT"
  exit 0
fi
command -v debootstrap >/dev/null || die "debootstrap is not installed: apt-get install debootstrap (or run scripts/install-test-deps.sh)"

derive_mirror() {
  # deb822 .sources files: "URIs: http://host/debian"; one-line .list files: "deb http://host/debian suite ..."
  local f uri
  shopt -s nullglob
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -r "$f" ]] || continue
    while read -r uri; do
      case "$uri" in
        *debian-security*|*security.debian.org*|*snapshot.debian.org*) continue ;;
        http://*/debian|https://*/debian|http://*/debian/|https://*/debian/) echo "${uri%/}"; return 0 ;;
      esac
    done < <(
      if [[ "$f" == *.sources ]]; then
        sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' "$f" | tr ' ' '\n'
      else
        sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' "$f"
      fi
    )
  done
  return 1
}

MIRROR="${DNCGATE_DEBIAN_MIRROR:-}"
if [[ -z "$MIRROR" ]]; then
  MIRROR="$(derive_mirror || true)"
  if [[ -z "$MIRROR" ]]; then
    MIRROR="http://deb.debian.org/debian"
    log "no Debian mirror found in /etc/apt/sources.list*; using $MIRROR"
  fi
fi

umount_all() {
  # Unmount anything left mounted below the chroot (a crashed harness run), deepest first.
  local m
  for m in $(awk -v root="$CHROOT" '$2 == root || index($2, root "/") == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}

START=$(date +%s)
umount_all
if [[ -e "$CHROOT" ]] && ! stamp_ok; then
  log "removing incomplete or outdated chroot $CHROOT"
  rm -rf --one-file-system "$CHROOT"
fi
WORK="$CHROOT.partial"
umount_all_work() {
  local m
  for m in $(awk -v root="$WORK" '$2 == root || index($2, root "/") == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}
umount_all_work
rm -rf --one-file-system "$WORK"
trap 'umount_all_work' EXIT

log "debootstrap --variant=minbase $SUITE from $MIRROR into $WORK"
# A stalled mirror must fail the build, not hold CI: debootstrap's wget retries for far longer.
if ! timeout 1200 debootstrap --variant=minbase "$SUITE" "$WORK" "$MIRROR" >"$WORK.debootstrap.log" 2>&1; then
  tail -n 30 "$WORK.debootstrap.log" >&2 || true
  die "debootstrap failed (full log: $WORK.debootstrap.log); check network access to $MIRROR"
fi
rm -f "$WORK.debootstrap.log"

# Keep the chroot's own package scripts from starting services.
printf '#!/bin/sh\nexit 101\n' > "$WORK/usr/sbin/policy-rc.d"
chmod 755 "$WORK/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$WORK/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$WORK/proc"

log "installing ${PACKAGES[*]}"
if ! timeout 600 chroot "$WORK" env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
    apt-get -o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0 -q update >&2 ||
   ! timeout 1200 chroot "$WORK" env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
    apt-get -o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0 -q -y \
    --no-install-recommends install "${PACKAGES[@]}" >&2; then
  die "apt-get install ${PACKAGES[*]} failed inside the chroot (is Asterisk currently in Debian $SUITE?)"
fi
chroot "$WORK" apt-get clean
umount_all_work

[[ -x "$WORK/usr/sbin/asterisk" ]] || die "asterisk binary missing after install"
VERSION="$(chroot "$WORK" dpkg-query -W -f '${Version}' asterisk 2>/dev/null || echo unknown)"
# --rebuild: the old chroot stays usable until the new one is complete
if [[ -e "$CHROOT" ]]; then
  umount_all
  rm -rf --one-file-system "$CHROOT.old"
  mv "$CHROOT" "$CHROOT.old"
fi
mv "$WORK" "$CHROOT"
rm -rf --one-file-system "$CHROOT.old"
echo "$STAMP_VERSION asterisk=$VERSION mirror=$MIRROR built=$(date -u +%FT%TZ) seconds=$(( $(date +%s) - START ))" > "$STAMP"
log "built $CHROOT with asterisk $VERSION in $(( $(date +%s) - START ))s"
echo "$CHROOT"
