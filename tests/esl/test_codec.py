"""EslDecoder against the recorded FreeSWITCH 1.11.1 byte streams and hostile input."""

from __future__ import annotations

import json
import random

import pytest
from esl_helpers import TRANSCRIPTS, fixture_bytes, transcript_steps
from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.esl.codec import EslDecoder, Limits, decode_event, header_lines, parse_header_block
from dncgate.esl.errors import (
    EslProtocolError,
    IncompleteMessageError,
    InvalidBodyError,
    InvalidContentLengthError,
    LimitExceededError,
    MalformedHeaderError,
)
from dncgate.esl.messages import ChannelData, Headers, Message


def decode_all(data: bytes, chunks: list[int] | None = None, limits: Limits | None = None) -> list[Message]:
    decoder = EslDecoder(limits or Limits())
    out: list[Message] = []
    if chunks is None:
        out.extend(decoder.feed(data))
    else:
        pos = 0
        for size in chunks:
            out.extend(decoder.feed(data[pos : pos + size]))
            pos += size
        out.extend(decoder.feed(data[pos:]))
    decoder.feed_eof()
    return out


def random_chunks(total: int, rng: random.Random) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(rng.choice([1, 2, 3, 7, 53, 512, 4096, 9000]))
    return sizes


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_every_transcript_decodes_identically_under_any_chunking(name: str) -> None:
    raw = fixture_bytes(f"{name}.rx.raw")
    whole = decode_all(raw)
    # Each received block in the annotated transcript is exactly one frame.
    rx_blocks = [s.data for s in transcript_steps(name) if s.direction == "rx"]
    assert len(whole) == len(rx_blocks)
    for block, message in zip(rx_blocks, whole, strict=True):
        assert decode_all(block) == [message]
    assert decode_all(raw, [1] * len(raw)) == whole
    rng = random.Random(name)
    for _ in range(5):
        assert decode_all(raw, random_chunks(len(raw), rng)) == whole


def test_connect_reply_channel_data() -> None:
    first = decode_all(fixture_bytes("outbound_1_5550001.rx.raw"))[0]
    assert first.content_type == "command/reply"
    assert first.headers["Reply-Text"] == "+OK\n"  # %2BOK%0A, URL-decoded
    assert first.reply_text == "+OK"
    assert first.ok
    assert first.body == b""
    channel = ChannelData.from_reply(first)
    assert channel.unique_id == "51489bd7-f8d6-4b06-a0ac-50b6ef133f4b"
    assert channel.destination_number == "5550001"
    assert channel.caller_id_number == "2125550100"
    assert channel.caller_id_name == "DNC test"
    assert channel.channel_name == "sofia/e2e/2125550100@127.0.0.1:5070"
    assert channel.answer_state == "ringing"
    assert channel.headers["Socket-Mode"] == "async"
    assert channel.headers["Control"] == "full"
    assert channel.variable("sip_req_user") == "5550001"
    assert channel.variable("current_application_data") == "127.0.0.1:8084 async full"
    assert channel.variable("sip_full_from") == '"DNC test" <sip:2125550100@127.0.0.1:5070>;tag=32347SIPpTag001'
    assert channel.variables["socket_host"] == "127.0.0.1"
    assert channel.variable("no_such_var") is None
    # Content-Type sits near the end of this block, after ~160 channel headers.
    names = [n for n, _ in channel.headers.pairs]
    assert names.index("Content-Type") > 150


def test_connect_reply_extract_file_matches_stream() -> None:
    extract = fixture_bytes("extract_connect_reply_5550001.txt")
    assert decode_all(extract) == decode_all(fixture_bytes("outbound_1_5550001.rx.raw"))[:1]


def test_fail_closed_variant_destination_keeps_prefix() -> None:
    first = decode_all(fixture_bytes("outbound_1_85551003.rx.raw"))[0]
    assert ChannelData.from_reply(first).destination_number == "85551003"


def test_command_replies_and_api_response() -> None:
    messages = decode_all(fixture_bytes("outbound_1_5550001.rx.raw"))
    assert [m.reply_text for m in messages[1:3]] == ["+OK Events Enabled", "+OK will linger"]
    api = messages[3]
    assert api.content_type == "api/response"
    assert api.body == b"5550001"
    assert api.event is None


def test_plain_events_are_url_decoded() -> None:
    messages = decode_all(fixture_bytes("outbound_1_5550001.rx.raw"))
    events = [m.event for m in messages if m.event is not None]
    names = [e.name for e in events]
    assert names[:3] == ["CHANNEL_EXECUTE", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_EXECUTE_COMPLETE"]
    playback_done = next(e for e in events if e.name == "CHANNEL_EXECUTE_COMPLETE" and e.application == "playback")
    assert playback_done.application_response == "FILE PLAYED"
    assert playback_done.application_uuid == "08b67079-1dd6-452e-af98-731df64b5f2e"
    assert playback_done.format == "plain"
    assert playback_done.body is None
    assert playback_done.headers["Event-Date-Local"] == "2026-11-27 19:56:10"


def test_hangup_complete_plain_duplicate_hangup_cause() -> None:
    (message,) = decode_all(fixture_bytes("extract_hangup_complete_plain_5550001.txt"))
    event = message.event
    assert event is not None
    assert event.name == "CHANNEL_HANGUP_COMPLETE"
    assert event.hangup_cause == "CALL_REJECTED"
    assert event.headers.get_all("Hangup-Cause") == ["CALL_REJECTED", "CALL_REJECTED"]
    assert event.headers.duplicates == {"Hangup-Cause": ("CALL_REJECTED", "CALL_REJECTED")}
    assert event.variable("sip_hangup_disposition") == "send_refuse"


def test_hangup_complete_json_duplicate_hangup_cause() -> None:
    (message,) = decode_all(fixture_bytes("extract_hangup_complete_json_5551001.txt"))
    event = message.event
    assert event is not None
    assert event.format == "json"
    assert event.name == "CHANNEL_HANGUP_COMPLETE"
    assert event.hangup_cause == "NORMAL_CLEARING"
    assert event.headers.duplicates == {"Hangup-Cause": ("NORMAL_CLEARING", "NORMAL_CLEARING")}
    # Plain json.loads would silently keep one; we keep both in wire order.
    assert len(event.headers.pairs) == len(event.headers) + 1
    # JSON array headers use the same spelling as the plain format.
    assert event.variable("DP_MATCH") == "ARRAY::5551001|:5551001"


def test_json_duplicate_keys_first_wins_deterministically() -> None:
    body = b'{"Event-Name":"X","K":"first","K":"second","_body":"hello"}'
    event = decode_event("text/event-json", body)
    assert event.headers["K"] == "first"
    assert event.headers.get_all("K") == ["first", "second"]
    assert event.body == "hello"
    assert "_body" not in event.headers


def test_disconnect_notices() -> None:
    linger = decode_all(fixture_bytes("outbound_1_5550001.rx.raw"))[-1]
    assert linger.content_type == "text/disconnect-notice"
    assert linger.headers["Content-Disposition"] == "linger"
    assert linger.headers["Linger-Time"] == "-1"
    assert linger.headers["Channel-Name"] == "sofia/e2e/2125550100@127.0.0.1:5070"
    assert linger.body == b""
    bye = decode_all(fixture_bytes("outbound_4_5551000.rx.raw"))[-1]
    assert bye.headers["Content-Disposition"] == "disconnect"
    assert bye.body_text.startswith("Disconnected, goodbye.\n")
    assert len(bye.body) == 67


def test_inbound_stream_auth_bgapi_and_json_events() -> None:
    messages = decode_all(fixture_bytes("inbound_8021.rx.raw"))
    assert messages[0].content_type == "auth/request"
    assert messages[1].reply_text == "+OK accepted"
    assert messages[2].reply_text == "+OK event listener enabled json"
    job = messages[4]
    assert job.headers["Job-UUID"] == "e3bbfe23-0303-46ed-ae93-5901d0a8e160"
    events = [m.event for m in messages if m.event is not None]
    assert [e.name for e in events] == [
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "BACKGROUND_JOB",
        "CHANNEL_HANGUP_COMPLETE",
    ]
    background = events[2]
    assert background.job_uuid == "e3bbfe23-0303-46ed-ae93-5901d0a8e160"
    assert background.body == "+OK e2d51d18-227a-4ad4-8d2e-ca67a6320381\n"
    assert events[3].hangup_cause == "NORMAL_CLEARING"
    assert messages[-2].reply_text == "+OK bye"
    assert messages[-1].content_type == "text/disconnect-notice"


def test_plain_event_with_its_own_body() -> None:
    inner = (
        b"Event-Name: BACKGROUND_JOB\nJob-UUID: abc\nJob-Command: status\n"
        b"Content-Length: 10\n\n+OK done\n\n"
    )
    outer = b"Content-Length: %d\nContent-Type: text/event-plain\n\n%s" % (len(inner), inner)
    (message,) = decode_all(outer + b"Content-Type: command/reply\nReply-Text: +OK\n\n")[:1]
    assert message.event is not None
    assert message.event.body == "+OK done\n\n"
    assert message.event.job_uuid == "abc"


def test_crlf_and_stray_blank_lines_are_tolerated() -> None:
    data = b"\n\r\nContent-Type: command/reply\r\nReply-Text: +OK\r\n\r\n\n"
    (message,) = decode_all(data)
    assert message.reply_text == "+OK"


def test_header_line_limit() -> None:
    decoder = EslDecoder(Limits(max_line_bytes=64))
    with pytest.raises(LimitExceededError) as info:
        decoder.feed(b"X-Long: " + b"a" * 100)  # no newline yet: still refused
    assert info.value.limit == "header line bytes"
    with pytest.raises(EslProtocolError, match="already failed"):
        decoder.feed(b"\n\n")


def test_header_count_limit() -> None:
    decoder = EslDecoder(Limits(max_headers=3))
    with pytest.raises(LimitExceededError, match="header count"):
        decoder.feed(b"A: 1\nB: 2\nC: 3\nD: 4\n\n")


def test_huge_content_length_is_refused_before_the_body_arrives() -> None:
    decoder = EslDecoder()
    with pytest.raises(LimitExceededError) as info:
        decoder.feed(b"Content-Type: api/response\nContent-Length: 99999999999\n\n")
    assert info.value.value == 99999999999
    assert info.value.maximum == 4 * 1024 * 1024
    assert decoder.buffered == 0
    with pytest.raises(LimitExceededError):
        EslDecoder().feed(b"Content-Length: " + b"9" * 5000 + b"\n\n")


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1e3", b"", b"\xd9\xa3"])
def test_invalid_content_length(value: bytes) -> None:
    with pytest.raises(InvalidContentLengthError):
        EslDecoder().feed(b"Content-Type: api/response\nContent-Length: " + value + b"\n\n")


@pytest.mark.parametrize(
    "line", [b"no colon here", b": empty name", b"bad name: x", b"\x00nul: x", b"\x16\x03\x01\x02\x00\x01"]
)
def test_malformed_header_lines(line: bytes) -> None:
    with pytest.raises(MalformedHeaderError):
        EslDecoder().feed(line + b"\n\n")


def test_truncated_body_then_eof() -> None:
    decoder = EslDecoder()
    assert decoder.feed(b"Content-Type: api/response\nContent-Length: 10\n\n12345") == []
    with pytest.raises(IncompleteMessageError, match="inside a body"):
        decoder.feed_eof()


def test_truncated_headers_then_eof() -> None:
    decoder = EslDecoder()
    assert decoder.feed(b"Content-Type: command/reply\nReply-Te") == []
    with pytest.raises(IncompleteMessageError, match="inside headers"):
        decoder.feed_eof()


def test_truncated_event_stream_mid_event() -> None:
    raw = fixture_bytes("outbound_5_5551001.rx.raw")
    decoder = EslDecoder()
    complete = decoder.feed(raw[: len(raw) // 2])
    assert complete  # the frames before the cut are delivered
    with pytest.raises(IncompleteMessageError):
        decoder.feed_eof()


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1,2,3]", b'"str"', b"[" * 100000 + b"]" * 100000, b'{"a":' * 5000 + b"1" + b"}" * 5000],
)
def test_bad_event_json_is_typed_error(body: bytes) -> None:
    frame = b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(body), body)
    with pytest.raises(InvalidBodyError):
        EslDecoder().feed(frame)


@pytest.mark.parametrize("depth", [9, 400, 900])
def test_deeply_nested_json_values_are_refused_and_the_decoder_stops(depth: int) -> None:
    body = b'{"Event-Name":"X","a":' + b"[" * depth + b"]" * depth + b"}"
    decoder = EslDecoder()
    with pytest.raises(InvalidBodyError, match="nested"):
        decoder.feed(b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(body), body))
    with pytest.raises(EslProtocolError, match="decoder already failed"):
        decoder.feed(b"Content-Type: auth/request\n\n")  # refuses input after the error


def test_json_arrays_nested_a_few_levels_still_decode() -> None:
    event = decode_event("text/event-json", b'{"Event-Name":"X","a":[["b",["c"]],"d"]}')
    assert event.headers["a"] == "ARRAY::ARRAY::b|:ARRAY::c|:d"


def test_event_plain_body_shorter_than_inner_length() -> None:
    inner = b"Event-Name: X\nContent-Length: 50\n\nshort"
    with pytest.raises(InvalidBodyError):
        parse_header_block(inner)


def test_json_non_string_values_become_strings() -> None:
    event = decode_event("text/event-json", json.dumps({"Event-Name": "X", "N": 5, "L": ["a", "b"]}).encode())
    assert event.headers["N"] == "5"
    assert event.headers["L"] == "ARRAY::a|:b"  # spelled as event-plain spells array headers


def test_headers_mapping_behaviour() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("A", "3")])
    assert dict(headers) == {"A": "1", "B": "2"}
    assert headers.get_ci("a") == "1"
    assert headers == Headers([("A", "1"), ("B", "2"), ("A", "3")])
    assert headers != Headers([("A", "1"), ("B", "2")])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=50))
def test_arbitrary_bytes_never_raise_untyped_errors(data: bytes, chunk: int) -> None:
    decoder = EslDecoder(Limits(max_line_bytes=128, max_headers=16, max_body_bytes=256))
    try:
        for i in range(0, len(data), chunk):
            for message in decoder.feed(data[i : i + chunk]):
                assert isinstance(message, Message)
        decoder.feed_eof()
    except EslProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_after_a_valid_frame_keeps_the_valid_frame(junk: bytes) -> None:
    decoder = EslDecoder(Limits(max_line_bytes=128))
    good = decoder.feed(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
    assert [m.reply_text for m in good] == ["+OK"]
    try:
        decoder.feed(junk)
        decoder.feed_eof()
    except EslProtocolError:
        pass


def test_a_content_length_among_an_events_headers_is_not_its_body() -> None:
    """mod_sms's SMS::DELIVERY_REPORT (recorded on a real 1.11.1) copies its message's
    ``Content-Length: 13`` into the middle of its headers and has no body: before, the decoder
    refused it (body shorter than its Content-Length) and ended the connection."""
    frames = decode_all(fixture_bytes("../esl_chat/inbound_chat_plain.rx.raw"))
    reports = [decode_event(f.content_type, f.body) for f in frames if b"DELIVERY_REPORT" in f.body
               and f.content_type == "text/event-plain"]
    assert reports
    for report in reports:
        assert report.headers.get_ci("Event-Subclass") == "SMS::DELIVERY_REPORT"
        assert report.headers.get_ci("Delivery-Result-Code") == "200"
        assert report.body is None
    message = parse_header_block(b"Event-Name: CUSTOM\nContent-Length: 5\n\nhello")
    assert message[1] == b"hello"


def test_a_plain_block_is_read_in_place_as_its_lines_would_be_split() -> None:
    """FreeSWITCH's blocks are read in place (no split until iterated): the first of a repeated name
    wins, case-insensitively too; a value that is no UTF-8 is replaced as the line path replaces it;
    a name that cannot be a line's (a colon, a newline, not a str) is never found."""
    block = b"Event-Name: X\nHangup-Cause: A%20B\nhangup-cause: C\nHangup-Cause: D\nBad: \xe2\x82\nEmpty:\nK: k"
    decoder = EslDecoder()
    [message] = decoder.feed(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % (len(block) + 2)
                             + block + b"\n\n")
    assert message.event is not None
    headers = message.event.headers
    assert headers._pairs is None  # not split yet
    assert (headers["Hangup-Cause"], headers.get_ci("HANGUP-CAUSE"), headers.get("hangup-cause")) == ("A B", "A B", "C")
    assert (headers["Bad"], headers["Empty"], headers.get_ci("\u212a")) == ("\ufffd", "", "k")
    assert (headers.get("Event-Name: X"), headers.get("Event-Name\nK"), headers.get(""), 5 in headers) == (
        None, None, None, False)
    with pytest.raises(KeyError):
        headers["Missing"]
    assert headers._pairs is None
    assert headers.duplicates == {"Hangup-Cause": ("A B", "D")}
    assert headers == Headers(header_lines(block + b"\n\n")[0])
    assert (len(headers), headers.get_all("Hangup-Cause")) == (6, ["A B", "D"])
