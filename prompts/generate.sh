#!/usr/bin/env bash
# Regenerate dncgate's synthetic "declined" announcements from text with espeak-ng + sox.
#
#   prompts/generate.sh          write the wavs and prompts/SHA256SUMS
#   prompts/generate.sh --check  regenerate into a temp dir and compare with the committed files
#
# Output (all 16-bit signed little-endian PCM, mono, RIFF/WAVE):
#   prompts/asterisk/<lang>/declined.wav              8000 Hz (what Asterisk's format_wav plays)
#   prompts/freeswitch/<lang>/8000/declined.wav        8000 Hz
#   prompts/freeswitch/<lang>/16000/declined.wav      16000 Hz
#
# The output is deterministic for a given espeak-ng/sox build: sox runs with -R (repeatable)
# and -D (no dither), and no effect uses randomness. Different espeak-ng versions may
# synthesise slightly different audio; the versions used are written to SHA256SUMS.
set -euo pipefail
export LC_ALL=C.UTF-8

HERE="$(cd "$(dirname "$0")" && pwd)"
MODE="${1:-write}"

# lang|espeak voice|words per minute|text
PROMPTS=(
  "en|en-gb|165|The number you dialled does not accept marketing calls."
  "zh|cmn|165|您拨打的号码不接受营销电话。"
)

for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "generate.sh: $tool not installed (apt-get install espeak-ng sox)" >&2; exit 1; }
done

render() {  # render OUTDIR
  local out="$1" entry lang voice wpm text tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  for entry in "${PROMPTS[@]}"; do
    IFS='|' read -r lang voice wpm text <<<"$entry"
    espeak-ng -v "$voice" -s "$wpm" -w "$tmp/$lang.raw.wav" -- "$text"
    # normalise to -3 dBFS, 200 ms of silence either side so early media doesn't clip the first word
    sox -R -D "$tmp/$lang.raw.wav" -b 16 -e signed-integer -c 1 "$tmp/$lang.norm.wav" gain -n -3 pad 0.2 0.2
    mkdir -p "$out/asterisk/$lang" "$out/freeswitch/$lang/8000" "$out/freeswitch/$lang/16000"
    sox -R -D "$tmp/$lang.norm.wav" -r 8000 -b 16 -e signed-integer -c 1 -t wav "$out/asterisk/$lang/declined.wav" rate -h
    cp "$out/asterisk/$lang/declined.wav" "$out/freeswitch/$lang/8000/declined.wav"
    sox -R -D "$tmp/$lang.norm.wav" -r 16000 -b 16 -e signed-integer -c 1 -t wav "$out/freeswitch/$lang/16000/declined.wav" rate -h
  done
  (
    cd "$out"
    echo "# espeak-ng: $(espeak-ng --version | head -n1)"
    echo "# sox: $(sox --version 2>&1 | head -n1 | sed 's/^sox: *//')"
    find asterisk freeswitch -name '*.wav' -print0 | sort -z | xargs -0 sha256sum
  ) > "$out/SHA256SUMS"
}

case "$MODE" in
  write)
    render "$HERE"
    cat "$HERE/SHA256SUMS"
    ;;
  --check)
    tmpout="$(mktemp -d)"
    trap 'rm -rf "$tmpout"' EXIT
    render "$tmpout"
    if diff -u "$HERE/SHA256SUMS" "$tmpout/SHA256SUMS"; then
      (cd "$HERE" && sha256sum --quiet -c <(grep -v '^#' SHA256SUMS)) && echo "prompts: up to date"
    else
      echo "prompts: regenerated output differs from the committed files (different espeak-ng/sox, or stale prompts)" >&2
      exit 1
    fi
    ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
