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
#   ... and the same three for every subscriber self-service IVR prompt, ivr-<id>.wav
#   (dncgate/ivr/flow.py names them; the table IVR_PROMPTS below)
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

# Subscriber self-service IVR (dncgate/ivr/flow.py), rendered like the announcement above.
# lang|espeak voice|words per minute|padding in s either side|prompt id|text
# Words that are strung together (digits, spelled characters, category names) get less padding.
IVR_PROMPTS=(
  "en|en-gb|165|0.2|ivr-welcome|Welcome to the do not call service."
  "en|en-gb|165|0.2|ivr-menu|To decline all marketing calls, press 1. To choose the kinds of marketing calls you decline, press 2. To withdraw a consent you gave to a business, press 3. To hear your current choices, press 4. To allow marketing calls again, press 9."
  "en|en-gb|165|0.2|ivr-unidentified|We cannot identify your phone number. Please call again without hiding your number. Goodbye."
  "en|en-gb|165|0.2|ivr-invalid|That is not a valid choice."
  "en|en-gb|165|0.2|ivr-no-input|We did not receive your choice."
  "en|en-gb|165|0.2|ivr-goodbye|Thank you. Goodbye."
  "en|en-gb|165|0.2|ivr-failed|Sorry, your choice could not be saved. Please call again later. Goodbye."
  "en|en-gb|165|0.2|ivr-unavailable|Sorry, this service is not available right now. Please call again later. Goodbye."
  "en|en-gb|165|0.2|ivr-saved-decline-all|You now decline all marketing calls. This takes effect immediately."
  "en|en-gb|165|0.2|ivr-saved-reallowed|Marketing calls are allowed again. This takes effect immediately."
  "en|en-gb|165|0.2|ivr-categories-intro|Press the key of each kind of marketing call you decline."
  "en|en-gb|165|0.2|ivr-categories-finish|Then press the hash key. To go back, press star."
  "en|en-gb|165|0.2|ivr-saved-categories|This takes effect immediately. You now decline marketing calls for:"
  "en|en-gb|165|0.2|ivr-consents-intro|These businesses hold your consent to call you:"
  "en|en-gb|165|0.2|ivr-consents-choose|To withdraw your consent, press the number of the business. To go back, press star."
  "en|en-gb|165|0.2|ivr-no-consents|No business holds your consent to call you."
  "en|en-gb|165|0.2|ivr-consent-withdrawn|Your consent has been withdrawn. This takes effect immediately."
  "en|en-gb|165|0.2|ivr-status-declined-all|You decline all marketing calls."
  "en|en-gb|165|0.2|ivr-status-declined-categories|You decline marketing calls for:"
  "en|en-gb|165|0.2|ivr-status-none|You have not declined marketing calls."
  "en|en-gb|165|0.05|ivr-press|press"
  "en|en-gb|165|0.05|ivr-business|business"
  "en|en-gb|165|0.05|ivr-cat-finance|finance and insurance,"
  "en|en-gb|165|0.05|ivr-cat-real_estate|real estate,"
  "en|en-gb|165|0.05|ivr-cat-education|education,"
  "en|en-gb|165|0.05|ivr-cat-health|health,"
  "en|en-gb|165|0.05|ivr-cat-consumer|consumer goods and cars,"
  "en|en-gb|165|0.05|ivr-cat-telecom|telecom, media and I T,"
  "en|en-gb|165|0.05|ivr-cat-travel|travel and leisure,"
  "en|en-gb|165|0.05|ivr-cat-food|food,"
  "en|en-gb|165|0.05|ivr-char-dash|dash"
  "en|en-gb|165|0.05|ivr-char-dot|dot"
  "en|en-gb|165|0.05|ivr-char-underscore|underscore"
  "zh|cmn|165|0.2|ivr-welcome|欢迎使用谢绝营销电话服务。"
  "zh|cmn|165|0.2|ivr-menu|谢绝所有营销电话，请按1。选择谢绝的营销电话类别，请按2。撤回您给某个企业的同意，请按3。收听您当前的设置，请按4。重新接受营销电话，请按9。"
  "zh|cmn|165|0.2|ivr-unidentified|无法识别您的电话号码。请不要隐藏号码，再拨打一次。再见。"
  "zh|cmn|165|0.2|ivr-invalid|您的选择无效。"
  "zh|cmn|165|0.2|ivr-no-input|没有收到您的选择。"
  "zh|cmn|165|0.2|ivr-goodbye|谢谢，再见。"
  "zh|cmn|165|0.2|ivr-failed|抱歉，您的选择未能保存。请稍后再拨。再见。"
  "zh|cmn|165|0.2|ivr-unavailable|抱歉，此服务暂时不可用。请稍后再拨。再见。"
  "zh|cmn|165|0.2|ivr-saved-decline-all|您已谢绝所有营销电话，立即生效。"
  "zh|cmn|165|0.2|ivr-saved-reallowed|您已重新接受营销电话，立即生效。"
  "zh|cmn|165|0.2|ivr-categories-intro|请按下您要谢绝的每一类营销电话的按键。"
  "zh|cmn|165|0.2|ivr-categories-finish|然后按井号键。返回请按星号键。"
  "zh|cmn|165|0.2|ivr-saved-categories|立即生效。您已谢绝以下类别的营销电话："
  "zh|cmn|165|0.2|ivr-consents-intro|以下企业持有您的来电同意："
  "zh|cmn|165|0.2|ivr-consents-choose|撤回同意，请按企业的编号。返回请按星号键。"
  "zh|cmn|165|0.2|ivr-no-consents|没有企业持有您的来电同意。"
  "zh|cmn|165|0.2|ivr-consent-withdrawn|您的同意已撤回，立即生效。"
  "zh|cmn|165|0.2|ivr-status-declined-all|您谢绝所有营销电话。"
  "zh|cmn|165|0.2|ivr-status-declined-categories|您谢绝以下类别的营销电话："
  "zh|cmn|165|0.2|ivr-status-none|您没有谢绝营销电话。"
  "zh|cmn|165|0.05|ivr-press|请按"
  "zh|cmn|165|0.05|ivr-business|企业"
  "zh|cmn|165|0.05|ivr-cat-finance|金融和保险，"
  "zh|cmn|165|0.05|ivr-cat-real_estate|房地产，"
  "zh|cmn|165|0.05|ivr-cat-education|教育，"
  "zh|cmn|165|0.05|ivr-cat-health|医疗健康，"
  "zh|cmn|165|0.05|ivr-cat-consumer|消费品和汽车，"
  "zh|cmn|165|0.05|ivr-cat-telecom|电信、媒体和信息技术，"
  "zh|cmn|165|0.05|ivr-cat-travel|旅游和休闲，"
  "zh|cmn|165|0.05|ivr-cat-food|餐饮食品，"
  "zh|cmn|165|0.05|ivr-char-dash|杠"
  "zh|cmn|165|0.05|ivr-char-dot|点"
  "zh|cmn|165|0.05|ivr-char-underscore|下划线"
)
# digits (read out numbers) and letters (spelled business names), both languages
EN_DIGITS=(zero one two three four five six seven eight nine)
ZH_DIGITS=(零 一 二 三 四 五 六 七 八 九)
for d in 0 1 2 3 4 5 6 7 8 9; do
  IVR_PROMPTS+=("en|en-gb|165|0.05|ivr-digit-$d|${EN_DIGITS[$d]}" "zh|cmn|165|0.05|ivr-digit-$d|${ZH_DIGITS[$d]}")
done
for c in a b c d e f g h i j k l m n o p q r s t u v w x y z; do
  IVR_PROMPTS+=("en|en-gb|165|0.05|ivr-char-$c|${c^^}" "zh|cmn|165|0.05|ivr-char-$c|${c^^}")
done

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
  local pad id
  for entry in "${IVR_PROMPTS[@]}"; do
    IFS='|' read -r lang voice wpm pad id text <<<"$entry"
    espeak-ng -v "$voice" -s "$wpm" -w "$tmp/ivr.raw.wav" -- "$text"
    sox -R -D "$tmp/ivr.raw.wav" -b 16 -e signed-integer -c 1 "$tmp/ivr.norm.wav" gain -n -3 pad "$pad" "$pad"
    mkdir -p "$out/asterisk/$lang" "$out/freeswitch/$lang/8000" "$out/freeswitch/$lang/16000"
    sox -R -D "$tmp/ivr.norm.wav" -r 8000 -b 16 -e signed-integer -c 1 -t wav "$out/asterisk/$lang/$id.wav" rate -h
    cp "$out/asterisk/$lang/$id.wav" "$out/freeswitch/$lang/8000/$id.wav"
    sox -R -D "$tmp/ivr.norm.wav" -r 16000 -b 16 -e signed-integer -c 1 -t wav "$out/freeswitch/$lang/16000/$id.wav" rate -h
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
