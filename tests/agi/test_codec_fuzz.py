"""Fuzz the AGI codec (issue 11): any bytes give a typed result or a typed AgiError, nothing else.

A fixed, small example budget and no deadline, so the run does not depend on the machine's speed.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.agi.codec import AgiDecoder, AgiReply, AgiRequest, HangupNotice, parse_reply_line
from dncgate.agi.errors import AgiError
from dncgate.agi.limits import AgiLimits
from tests.agi.agi_helpers import TRANSCRIPT, load_transcript

HEADER = load_transcript(TRANSCRIPT).header_bytes
SMALL = AgiLimits(max_line_bytes=256, max_header_lines=16, max_header_bytes=2048, max_usage_lines=8)
# Bytes that look like AGI: reply codes, result=, endpos=, parentheses, newlines, long digit runs.
_PIECES = st.sampled_from([
    b"200 ", b"510 ", b"520-", b"520 ", b"result=", b" endpos=", b" (", b")", b"-", b"HANGUP", b"\n", b"\r\n",
    b"agi_request: agi://x/check", b"agi_arg_1: ", b"agi_network: yes", b":", b"1" * 50, b"9" * 5000, b"\xff",
])
_NOISE = st.lists(st.one_of(_PIECES, st.binary(max_size=40)), max_size=24).map(b"".join)
_DIGITS = st.one_of(st.text("0123456789-", max_size=30), st.integers(0, 6000).map(lambda n: "7" * n))
# Reply-shaped lines: "200 result=<digits>[ (data)][ endpos=<digits>]", digit runs of any length.
_REPLY = st.builds(
    lambda result, data, endpos: f"200 result={result}" + (f" ({data})" if data is not None else "")
    + (f" endpos={endpos}" if endpos is not None else ""),
    _DIGITS, st.none() | st.text(max_size=20), st.none() | _DIGITS,
)


def _drive(decoder: AgiDecoder, chunks: list[bytes], eof: bool) -> list[object]:
    """Feed ``chunks``, pulling the header then events; the events seen, or the typed error last."""
    seen: list[object] = []
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            while True:
                if decoder.request is None:
                    if decoder.read_header() is None:
                        break
                    continue
                event = decoder.next_event()
                if event is None:
                    break
                seen.append(event)
        if eof:
            decoder.feed_eof()
            if decoder.request is None:
                decoder.read_header()
            while decoder.next_event() is not None:
                pass
    except AgiError as exc:
        seen.append(exc)
    return seen


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120) | _REPLY | _NOISE.map(lambda b: b.decode("utf-8", "replace")))
def test_parse_reply_line_raises_only_its_typed_error(line: str) -> None:
    try:
        got = parse_reply_line(line)
    except AgiError:
        return
    assert isinstance(got, AgiReply | HangupNotice)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NOISE, max_size=6), st.booleans())
def test_any_bytes_as_a_header_give_a_request_or_a_typed_error(chunks: list[bytes], eof: bool) -> None:
    seen = _drive(AgiDecoder(SMALL), chunks, eof)
    assert all(isinstance(item, AgiReply | HangupNotice | AgiError) for item in seen)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NOISE | _REPLY.map(lambda r: r.encode() + b"\n"), max_size=6), st.booleans())
def test_any_bytes_after_a_header_give_replies_or_a_typed_error(chunks: list[bytes], eof: bool) -> None:
    decoder = AgiDecoder()
    decoder.feed(HEADER)
    assert isinstance(decoder.read_header(), AgiRequest)
    seen = _drive(decoder, chunks, eof)
    assert all(isinstance(item, AgiReply | HangupNotice | AgiError) for item in seen)
