"""The sans-IO decoder against the recorded Asterisk 22 transcripts and every reply form."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.agi.codec import (
    MAX_ENDPOS_DIGITS,
    MAX_RESULT_DIGITS,
    AgiDecoder,
    AgiReply,
    AgiRequest,
    HangupNotice,
    LineBuffer,
    parse_reply_line,
)
from dncgate.agi.errors import AgiConnectionLost, AgiLimitExceeded, AgiProtocolError
from dncgate.agi.limits import AgiLimits
from tests.agi.agi_helpers import HANGUPWAIT, TRANSCRIPT, USAGE520, load_transcript

HEADER = load_transcript(TRANSCRIPT).header_bytes


def decode_header(data: bytes, limits: AgiLimits | None = None) -> AgiRequest:
    dec = AgiDecoder(limits)
    dec.feed(data)
    req = dec.read_header()
    assert req is not None
    return req


def decode_events(data: bytes) -> list[AgiReply | HangupNotice]:
    dec = AgiDecoder()
    dec.feed(HEADER + data)
    assert dec.read_header() is not None
    events: list[AgiReply | HangupNotice] = []
    while (ev := dec.next_event()) is not None:
        events.append(ev)
    return events


# -- header -----------------------------------------------------------------------------------------


def test_transcript_header_is_parsed_whole() -> None:
    req = decode_header(HEADER)
    assert len(req.env) == 25
    assert req.network is True
    assert req.script == "/transcript"  # sent as "transcript", without the leading slash
    assert req.request == "agi://127.0.0.1:4573/transcript"
    assert req.params == {}
    assert req.args == ("705550100", "second arg", "3rd")
    assert req.uniqueid == "1795809160.17"
    assert req.channel == "PJSIP/uac-00000011"
    assert req.callerid == "15551230000"
    assert req.calleridname == "dialer"
    assert req.extension == req.dnid == "705550100"
    assert req.context == "from-uac"
    assert req.accountcode == ""  # "agi_accountcode: " with nothing after the blank
    assert req.get("enhanced") == req.get("agi_enhanced") == "0.0"
    assert req.get("nope") is None


def test_header_fed_one_byte_at_a_time_gives_the_same_request() -> None:
    dec = AgiDecoder()
    results = []
    for i in range(len(HEADER)):
        dec.feed(HEADER[i : i + 1])
        results.append(dec.read_header())
    assert all(r is None for r in results[:-1])
    assert results[-1] == decode_header(HEADER)


def test_hangupwait_header_has_one_argument() -> None:
    req = decode_header(load_transcript(HANGUPWAIT).header_bytes)
    assert req.args == ("715550100",)
    assert req.script == "/hangupwait"
    assert req.uniqueid == "1795809161.18"


def test_query_string_becomes_params_and_plus_stays_a_plus() -> None:
    data = (
        b"agi_network: yes\n"
        b"agi_network_script: dnc/check?dst=+15551234567&tenant=a%20b&flag&dst2=%2B1\n"
        b"agi_request: agi://127.0.0.1:4573/dnc/check?dst=+15551234567&tenant=a%20b&flag&dst2=%2B1\n"
        b"agi_arg_1:  two leading blanks  \n"
        b"\n"
    )
    req = decode_header(data)
    assert req.script == "/dnc/check"
    assert req.params == {"dst": "+15551234567", "tenant": "a b", "flag": "", "dst2": "+1"}
    assert req.query_string == "dst=+15551234567&tenant=a%20b&flag&dst2=%2B1"
    assert req.args == (" two leading blanks  ",)  # only the separator blank is removed


def test_network_request_without_script_is_root() -> None:
    req = decode_header(b"agi_network: yes\nagi_request: agi://127.0.0.1\n\n")
    assert (req.script, req.params) == ("/", {})


def test_classic_agi_header_uses_the_script_file() -> None:
    req = decode_header(b"agi_request: /usr/share/asterisk/agi-bin/dncgate-agi\nagi_channel: PJSIP/a-1\n\n")
    assert req.network is False
    assert req.script == "/usr/share/asterisk/agi-bin/dncgate-agi"


def test_crlf_line_endings_are_tolerated() -> None:
    req = decode_header(HEADER.replace(b"\n", b"\r\n"))
    assert req == decode_header(HEADER)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET / HTTP/1.1\nHost: x\n\n", "not an agi_"),
        (b"agi_request: a\nagi_request: b\n\n", "duplicate"),
        (b"agi_channel: x\n\n", "without agi_request"),
        (b"agi_request: a\nagi_arg_1: x\nagi_arg_3: y\n\n", "numbered"),
        (b"agi_request: a\nagi_arg_x: y\n\n", "bad argument"),
        (b"\n", "empty header"),
        (b"agi_request a\n\n", "not an agi_"),
    ],
)
def test_malformed_headers_are_protocol_errors(data: bytes, message: str) -> None:
    dec = AgiDecoder()
    dec.feed(data)
    with pytest.raises(AgiProtocolError, match=message):
        dec.read_header()


def test_too_many_header_lines() -> None:
    dec = AgiDecoder(AgiLimits(max_header_lines=10))
    dec.feed(HEADER)
    with pytest.raises(AgiLimitExceeded) as err:
        dec.read_header()
    assert (err.value.limit, err.value.value, err.value.maximum) == ("max_header_lines", 11, 10)


def test_too_many_header_bytes() -> None:
    dec = AgiDecoder(AgiLimits(max_header_bytes=200))
    dec.feed(HEADER)
    with pytest.raises(AgiLimitExceeded) as err:
        dec.read_header()
    assert err.value.limit == "max_header_bytes"


def test_overlong_line_is_refused_before_its_newline_arrives() -> None:
    dec = AgiDecoder(AgiLimits(max_line_bytes=64))
    dec.feed(b"agi_request: " + b"x" * 40)
    assert dec.read_header() is None  # still within the limit, waiting
    dec.feed(b"y" * 40)  # now 93 bytes without a newline
    with pytest.raises(AgiLimitExceeded) as err:
        dec.read_header()
    assert err.value.limit == "max_line_bytes"


def test_line_buffer_limit_is_exact() -> None:
    buf = LineBuffer(8)
    buf.feed(b"12345678\r\n123456789\n")
    assert buf.next_line() == ("12345678", 10)
    with pytest.raises(AgiLimitExceeded):
        buf.next_line()


def test_eof_inside_header() -> None:
    dec = AgiDecoder()
    dec.feed(HEADER[:100])
    assert dec.read_header() is None
    dec.feed_eof()
    with pytest.raises(AgiConnectionLost, match="inside a line"):
        dec.read_header()
    silent = AgiDecoder()
    silent.feed_eof()
    assert silent.header_started is False
    with pytest.raises(AgiConnectionLost):
        silent.read_header()


# -- replies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=1", AgiReply(200, "result=1", 1, "1")),
        ("200 result=0", AgiReply(200, "result=0", 0, "0")),
        ("200 result=-2", AgiReply(200, "result=-2", -2, "-2")),
        ("200 result=1 (15551230000)", AgiReply(200, "result=1 (15551230000)", 1, "1", "15551230000")),
        ("200 result=1 (a b c)", AgiReply(200, "result=1 (a b c)", 1, "1", "a b c")),
        ("200 result=1 ()", AgiReply(200, "result=1 ()", 1, "1", "")),
        ("200 result=1 (f(x) (y))", AgiReply(200, "result=1 (f(x) (y))", 1, "1", "f(x) (y)")),
        ("200 result=0 endpos=3520", AgiReply(200, "result=0 endpos=3520", 0, "0", None, 3520)),
        ("200 result=-1 endpos=0", AgiReply(200, "result=-1 endpos=0", -1, "-1", None, 0)),
        ("200 result=-1 (hangup) endpos=160",
         AgiReply(200, "result=-1 (hangup) endpos=160", -1, "-1", "hangup", 160)),
        ("200 result=1 (x) endpos=5)", AgiReply(200, "result=1 (x) endpos=5)", 1, "1", "x) endpos=5")),
        ("200 result= (timeout)", AgiReply(200, "result= (timeout)", None, "", "timeout")),
        ("200 result=12# (timeout)", AgiReply(200, "result=12# (timeout)", None, "12#", "timeout")),
        ("510 Invalid or unknown command", AgiReply(510, "Invalid or unknown command")),
        ("511 Command Not Permitted on a dead channel or intercept routine",
         AgiReply(511, "Command Not Permitted on a dead channel or intercept routine")),
        ("520 Invalid command syntax.  Proper usage not available.",
         AgiReply(520, "Invalid command syntax.  Proper usage not available.")),
    ],
)
def test_reply_forms(line: str, expected: AgiReply) -> None:
    got = parse_reply_line(line)
    assert isinstance(got, AgiReply)
    assert dataclasses.replace(got, lines=()) == expected
    assert got.lines == (line,)
    assert got.ok is (expected.code == 200)


@pytest.mark.parametrize("line", ["hello", "200", "200 foo", "abc result=1", "20 result=1", "HANGUP now", ""])
def test_malformed_replies(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply_line(line)


@pytest.mark.parametrize(
    "line",
    ["200 result=" + "1" * 4301, "200 result=-" + "1" * 4301, "200 result=" + "1" * (MAX_RESULT_DIGITS + 1),
     "200 result=0 endpos=" + "1" * 4301, "200 result=0 (x) endpos=" + "9" * (MAX_ENDPOS_DIGITS + 1)],
)
def test_overlong_integers_are_protocol_errors_not_value_errors(line: str) -> None:
    """Issue 11.13: int() refuses more than 4,300 digits with a plain ValueError; the codec bounds them first."""
    with pytest.raises(AgiProtocolError, match="longer than"):
        parse_reply_line(line)


def test_integers_at_their_bounds_still_parse() -> None:
    got = parse_reply_line("200 result=-" + "1" * MAX_RESULT_DIGITS + " endpos=" + "9" * MAX_ENDPOS_DIGITS)
    assert isinstance(got, AgiReply)
    assert got.result == -int("1" * MAX_RESULT_DIGITS)
    assert got.endpos == int("9" * MAX_ENDPOS_DIGITS)


@pytest.mark.parametrize("name", [TRANSCRIPT, HANGUPWAIT, USAGE520])
def test_every_recorded_reply_decodes_in_order(name: str) -> None:
    t = load_transcript(name)
    expected: list[str] = []
    for ex in t.exchanges:
        expected += ["HANGUP"] * ex.replies.count(b"HANGUP\n") + ["reply"]  # a 520 block is one reply
    events = decode_events(t.reply_bytes)
    assert ["HANGUP" if isinstance(e, HangupNotice) else "reply" for e in events] == expected


def test_transcript_replies_carry_the_recorded_values() -> None:
    events = decode_events(load_transcript(TRANSCRIPT).reply_bytes)
    replies = [e for e in events if isinstance(e, AgiReply)]
    assert [r.code for r in replies] == [200] * 14 + [510, 200]
    assert replies[1].data == "15551230000"
    assert replies[2].result == 0
    assert replies[2].data is None
    assert replies[3].data == "15551230000-705550100-PJSIP/uac-00000011"
    assert replies[8].result == 4  # CHANNEL STATUS: ringing
    assert (replies[11].result, replies[11].endpos) == (0, 3520)
    assert (replies[12].result, replies[12].endpos) == (-1, 0)
    assert replies[13].result == -2  # EXEC of an unknown application
    assert replies[14].text == "Invalid or unknown command"


def test_hangup_line_before_the_pending_reply() -> None:
    t = load_transcript(HANGUPWAIT)
    events = decode_events(t.reply_bytes)
    assert isinstance(events[2], HangupNotice)
    third = events[3]
    assert isinstance(third, AgiReply)
    assert third.data == "15551230000"
    codes = [e.code for e in events if isinstance(e, AgiReply)]
    assert codes == [200, 200, 200, 200, 200, 200, 200, 200, 511, 511, 511, 511, 511, 200]
    assert sum(isinstance(e, HangupNotice) for e in events) == 1


def test_multiline_520_is_read_whole_and_the_next_reply_is_parsed() -> None:
    events = decode_events(load_transcript(USAGE520).reply_bytes)
    assert len(events) == 3
    usage, after, last = events
    assert isinstance(usage, AgiReply)
    assert isinstance(after, AgiReply)
    assert isinstance(last, AgiReply)
    assert usage.code == 520
    assert usage.text == "Invalid command syntax.  Proper usage follows:"
    assert usage.result is None
    assert usage.usage.splitlines() == [
        " Returns 0 if variablename is not set. Returns 1 if variablename is set and returns the variable "
        "in parentheses.",
        "",
        "Example return code: 200 result=1 (testvariable)",
    ]
    assert usage.lines[-1] == "520 End of proper usage."
    assert (after.code, after.result, after.data) == (200, 1, "15551230000")
    assert (last.code, last.result) == (200, 1)


def test_multiline_520_split_across_feeds() -> None:
    data = load_transcript(USAGE520).reply_bytes
    dec = AgiDecoder()
    dec.feed(HEADER)
    assert dec.read_header() is not None
    events: list[AgiReply | HangupNotice] = []
    for i in range(len(data)):
        dec.feed(data[i : i + 1])
        while (ev := dec.next_event()) is not None:
            events.append(ev)
    assert events == decode_events(data)


def test_usage_block_limit() -> None:
    dec = AgiDecoder(AgiLimits(max_usage_lines=5))
    dec.feed(HEADER + b"520-Invalid command syntax.  Proper usage follows:\n" + b"x\n" * 10)
    assert dec.read_header() is not None
    with pytest.raises(AgiLimitExceeded) as err:
        dec.next_event()
    assert err.value.limit == "max_usage_lines"


def test_replies_before_header_are_refused() -> None:
    dec = AgiDecoder()
    dec.feed(b"200 result=1\n")
    with pytest.raises(AgiProtocolError):
        dec.next_event()


def test_eof_while_waiting_for_a_reply() -> None:
    dec = AgiDecoder()
    dec.feed(HEADER + b"200 res")
    assert dec.read_header() is not None
    assert dec.next_event() is None
    dec.feed_eof()
    with pytest.raises(AgiConnectionLost):
        dec.next_event()


# -- the whole-block fast path equals the line-by-line path ---------------------------------------


def _decode_outcome(chunks: list[bytes], limits: AgiLimits) -> object:
    """What the decoder makes of ``chunks``: the request plus what follows it, or the error."""
    dec = AgiDecoder(limits)
    try:
        req = None
        for chunk in chunks:
            dec.feed(chunk)
            if req is None:
                req = dec.read_header()
        if req is None:
            return None
        return req, dec.next_event()
    except (AgiProtocolError, AgiLimitExceeded) as exc:
        limit = exc.limit if isinstance(exc, AgiLimitExceeded) else None
        return type(exc).__name__, limit


_LINE = st.one_of(
    st.sampled_from([b"agi_request: agi://127.0.0.1/check?x=1", b"agi_network: yes", b"agi_arg_1: 5551 2",
                     b"agi_arg_2: two", b"agi_channel: PJSIP/a-1", b"agi_arg_x: y", b"not a header",
                     b"agi_request: dup", b"", b"agi_callerid: \xff\xfe", b"agi_context: " + b"c" * 70]),
    st.binary(max_size=12).map(lambda b: b"agi_" + b),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=14),
    crlf=st.lists(st.booleans(), min_size=15, max_size=15),
    limits=st.sampled_from([AgiLimits(), AgiLimits(max_header_lines=4), AgiLimits(max_header_bytes=120),
                            AgiLimits(max_line_bytes=60)]),
)
def test_header_whole_or_byte_by_byte_decodes_alike(lines: list[bytes], crlf: list[bool], limits: AgiLimits) -> None:
    data = b"".join(line + (b"\r\n" if crlf[i] else b"\n") for i, line in enumerate(lines))
    data += (b"\r\n" if crlf[-1] else b"\n") + b"200 result=1\n"
    whole = _decode_outcome([data], limits)
    bytewise = _decode_outcome([data[i : i + 1] for i in range(len(data))], limits)
    assert whole == bytewise


def test_bytes_after_a_whole_header_block_are_kept_for_the_replies() -> None:
    dec = AgiDecoder()
    dec.feed(HEADER + b"200 result=1 (x)\nHANGUP\n")
    assert dec.read_header() == decode_header(HEADER)
    assert dec.next_event() == parse_reply_line("200 result=1 (x)")
    assert dec.next_event() == HangupNotice()


REPLY = b"200 result=1\n"


def _block(n_lines: int, pad: int = 0, eol: bytes = b"\n") -> bytes:
    """A header block of ``n_lines`` lines (the first ``34 + pad`` bytes long), then one reply."""
    lines = [b"agi_request: agi://127.0.0.1/check" + b"x" * pad]
    lines += [b"agi_arg_%d: %d" % (i, i) for i in range(1, n_lines)]
    return b"".join(line + eol for line in lines) + eol + REPLY


def _limits(case: str, eol: bytes) -> tuple[bytes, AgiLimits]:
    header_size = len(_block(3, eol=eol)) - len(REPLY)
    return {
        "lines at limit": (_block(4, eol=eol), AgiLimits(max_header_lines=4)),
        "lines over": (_block(5, eol=eol), AgiLimits(max_header_lines=4)),
        "line at limit": (_block(1, pad=6, eol=eol), AgiLimits(max_line_bytes=40)),
        "line over": (_block(1, pad=7, eol=eol), AgiLimits(max_line_bytes=40)),
        "bytes at limit": (_block(3, eol=eol), AgiLimits(max_header_bytes=header_size)),
        "bytes over": (_block(3, eol=eol), AgiLimits(max_header_bytes=header_size - 1)),
    }[case]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
@pytest.mark.parametrize(
    "case", ["lines at limit", "lines over", "line at limit", "line over", "bytes at limit", "bytes over"]
)
def test_header_limits_at_their_boundaries_alike_whole_or_byte_by_byte(case: str, eol: bytes) -> None:
    data, limits = _limits(case, eol)
    whole = _decode_outcome([data], limits)
    assert whole == _decode_outcome([data[i : i + 1] for i in range(len(data))], limits)
    assert isinstance(whole, tuple), whole
    assert isinstance(whole[0], AgiRequest) is case.endswith("at limit"), whole


# -- the known-keys path of the header equals the line-by-line check --------------------------------

_HEADER_LINE = st.one_of(
    st.sampled_from(["agi_request: agi://127.0.0.1/check", "agi_network: yes", "agi_arg_1: 5551: 2",
                     "agi_arg_2:two", "agi_arg_3: ", "agi_channel:", "agi_channel: PJSIP/a-1", "agi_request: dup",
                     "agi_arg_x: y", "agi_network", "agi_accountcode: ", "agi_context:: c", "agi_extension:  9"]),
    st.text(alphabet="agi_:xyz 19", max_size=12),
)


def _header_outcome(parse: object, lines: list[str]) -> object:
    try:
        return parse(lines)  # type: ignore[operator]
    except AgiProtocolError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_HEADER_LINE, max_size=8))
def test_known_keys_path_reads_a_header_as_the_line_by_line_check_does(lines: list[str]) -> None:
    from dncgate.agi import codec

    checked = _header_outcome(codec._checked_header, lines)  # learns the well-formed keys
    known = codec._known_header(lines)  # None: read line by line (a line it does not take as it is)
    assert known is None or known == checked
    if isinstance(checked, str):  # what the check refuses the fast path never takes
        assert known is None


def test_a_reply_without_data_decodes_alike_every_time_and_a_bad_one_is_refused_every_time() -> None:
    replies = decode_events(b"200 result=1\n200 result=1\n200 result=-1 endpos=0\n")
    assert replies == [parse_reply_line("200 result=1")] * 2 + [parse_reply_line("200 result=-1 endpos=0")]
    for _ in range(2):
        with pytest.raises(AgiProtocolError):
            decode_events(b"200 nothing\n")
