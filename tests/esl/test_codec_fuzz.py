"""Fuzz ESL framing and events (issue 11): frame-shaped input decodes to messages or a typed
EslProtocolError, well-formed events round-trip, and a decoded message's accessors never raise.

A fixed, small example budget and no deadline, so the run does not depend on the machine's speed.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.esl.codec import EslDecoder, Limits, _plain_block, header_lines
from dncgate.esl.errors import CommandError, EslProtocolError
from dncgate.esl.messages import EVENT_JSON, EVENT_PLAIN, ChannelData, Headers, Message

SMALL = Limits(max_line_bytes=512, max_headers=16, max_body_bytes=4096)
_NAME = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1, max_size=12)
_VALUE = st.text(max_size=40)
_LENGTH = st.one_of(st.integers(0, 5000).map(str), st.sampled_from(["-1", "x", "1" * 30, " 3", "٣"]))


def _frame(headers: list[tuple[str, str]], body: bytes, length: str | None) -> bytes:
    lines = [f"{name}: {value}".encode() for name, value in headers]
    if length is not None:
        lines.append(f"Content-Length: {length}".encode())
    return b"\n".join(lines) + b"\n\n" + body


_BODY = st.one_of(
    st.binary(max_size=200),
    st.lists(st.tuples(_NAME, _VALUE), max_size=6).map(lambda p: _frame(p, b"", None)),
    st.dictionaries(st.text(max_size=8), st.one_of(_VALUE, st.integers(), st.none(), st.lists(_VALUE, max_size=3)),
                    max_size=6).map(lambda d: json.dumps(d).encode()),
)
_FRAME = st.builds(
    lambda kind, headers, body, exact, length: _frame(
        [("Content-Type", kind), *headers], body, str(len(body)) if exact else length),
    st.sampled_from([EVENT_PLAIN, EVENT_JSON, "command/reply", "api/response", "text/disconnect-notice", "x/y"]),
    st.lists(st.tuples(_NAME, _VALUE), max_size=4), _BODY, st.booleans(), st.none() | _LENGTH,
)


def _touch(message: Message) -> None:
    """Every accessor a door uses on a message."""
    _ = (message.content_type, message.reply_text, message.body_text, message.ok)
    if message.event is not None:
        event = message.event
        _ = (event.name, event.unique_id, event.application, event.application_uuid, event.hangup_cause,
             event.job_uuid, event.variable("dncgate_language"))
    try:
        data = ChannelData.from_reply(message)  # a failed command/reply raises its typed CommandError
    except CommandError:
        return
    _ = (data.destination_number, data.caller_id_number, data.variables)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAME, min_size=1, max_size=4), st.integers(1, 64), st.booleans())
def test_frame_shaped_input_gives_messages_or_a_typed_error(frames: list[bytes], chunk: int, eof: bool) -> None:
    decoder = EslDecoder(SMALL)
    data = b"".join(frames)
    try:
        for start in range(0, len(data), chunk):
            for message in decoder.feed(data[start : start + chunk]):
                _touch(message)
        if eof:
            decoder.feed_eof()
    except EslProtocolError:
        return


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_NAME, _VALUE), min_size=1, max_size=8, unique_by=lambda p: p[0].lower()),
       st.integers(1, 64))
def test_a_well_formed_plain_event_round_trips_under_any_chunking(pairs: list[tuple[str, str]], chunk: int) -> None:
    pairs = [(name, value) for name, value in pairs if name.lower() not in ("content-length", "content-type")] or [
        ("Event-Name", "HEARTBEAT")]
    body = "".join(f"{name}: {quote(value)}\n" for name, value in pairs).encode() + b"\n"
    frame = b"Content-Type: text/event-plain\nContent-Length: %d\n\n" % len(body) + body
    decoder = EslDecoder()
    messages = [m for start in range(0, len(frame), chunk) for m in decoder.feed(frame[start : start + chunk])]
    assert len(messages) == 1
    event = messages[0].event
    assert event is not None
    assert [(name, event.get(name)) for name, _ in pairs] == pairs
    assert decoder.idle


_LINE = st.one_of(
    st.tuples(_NAME, _VALUE).map(lambda p: f"{p[0]}: {p[1]}"),
    st.tuples(_NAME, _VALUE).map(lambda p: f"{p[0]}:{quote(p[1])}"),
    st.text(max_size=20),  # anything: no colon, CR, a blank, a non-ASCII name
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=20), st.integers(1, 64))
def test_the_whole_block_path_gives_what_the_line_by_line_path_gives(lines: list[str], chunk: int) -> None:
    """The C-level whole-block check (FreeSWITCH's every block) is only a shortcut: where it answers, the
    block read in place gives the line-by-line pairs and lookups; the decoder fed whole and fed in chunks
    gives the same frames or error."""
    block = "\n".join(lines).encode()
    if _plain_block(block, SMALL):
        assert_same_headers(Headers.from_block(block), Headers(header_lines(block + b"\n\n", SMALL)[0]))
    frame = block + b"\n\n"
    (whole, whole_error), (chunked, chunked_error) = _decoded(frame, len(frame)), _decoded(frame, chunk)
    assert whole_error == chunked_error
    # A feed that raises returns none of the frames it decoded before the error: fed whole, that is all.
    assert whole == chunked if whole_error is None else chunked[: len(whole)] == whole


def assert_same_headers(lazy: Headers, eager: Headers) -> None:
    """Every lookup on a block read in place answers as on the same pairs split line by line: on a
    fresh copy of ``lazy`` (nothing split yet), then on ``lazy`` once iterated (its pairs split)."""
    block = lazy._block
    assert block is not None
    names = {name for name, _ in eager.pairs}
    probes = sorted(names | {n.upper() for n in names} | {n.lower() for n in names} | {"", "A: B", "\u212a", "x\ny"})
    fresh = [Headers.from_block(block[1:]) for _ in probes]
    assert (lazy.duplicates, dict(lazy), len(lazy), bool(lazy)) == (eager.duplicates, dict(eager), len(eager), True)
    assert lazy == eager
    for probe, headers in zip(probes, fresh, strict=True):
        assert headers[probe] == eager[probe] if probe in eager else probe not in headers, probe
        assert headers.get_ci(probe) == eager.get_ci(probe), probe
        assert (headers.get(probe), lazy.get(probe), lazy.get_ci(probe)) == (
            eager.get(probe), eager.get(probe), eager.get_ci(probe)), probe
        assert lazy.get_all(probe) == eager.get_all(probe)


def _decoded(data: bytes, chunk: int) -> tuple[list[object], tuple[type, str] | None]:
    """The frames (pairs, repeats, body) decoded, and the error that stopped the decoder if one did."""
    decoder = EslDecoder(SMALL)
    out: list[object] = []
    try:
        for start in range(0, len(data), chunk):
            fed = decoder.feed(data[start : start + chunk])
            out += [(m.headers.pairs, m.headers.duplicates, dict(m.headers), m.body) for m in fed]
    except EslProtocolError as exc:
        return out, (type(exc), str(exc))
    return out, None
