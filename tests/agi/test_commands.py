"""Command encoding: what Asterisk's own parser makes of our bytes, and that nothing can inject."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dncgate.agi import commands as cmd
from dncgate.agi.errors import AgiEncodingError
from tests.agi.agi_helpers import asterisk_parse_args


def words(line: str) -> list[str]:
    data = cmd.encode_line(line)
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert b"\r" not in data
    assert b"\x00" not in data
    return asterisk_parse_args(data[:-1].decode())


def test_parser_port_agrees_with_the_transcript_lines() -> None:
    assert asterisk_parse_args('SET VARIABLE "X_QUOTED" "a b c"') == ["SET", "VARIABLE", "X_QUOTED", "a b c"]
    assert asterisk_parse_args('EXEC Progress ""') == ["EXEC", "Progress", ""]
    assert asterisk_parse_args('STREAM FILE beep ""') == ["STREAM", "FILE", "beep", ""]
    assert asterisk_parse_args(r'X "a\"b" c\ d e\\f') == ["X", 'a"b', "c d", "e\\f"]


@pytest.mark.parametrize(
    ("line", "wire"),
    [
        (cmd.verbose("fastagi transcript start", 1), b'VERBOSE "fastagi transcript start" 1\n'),
        (cmd.get_variable("CALLERID(num)"), b"GET VARIABLE CALLERID(num)\n"),
        (cmd.get_full_variable("${CALLERID(num)}-${EXTEN}-${CHANNEL}"),
         b'GET FULL VARIABLE "${CALLERID(num)}-${EXTEN}-${CHANNEL}"\n'),
        (cmd.set_variable("DNC_RESULT", "REJECT"), b'SET VARIABLE DNC_RESULT "REJECT"\n'),
        (cmd.exec_app("Progress"), b'EXEC Progress ""\n'),
        (cmd.exec_app("Playback", "beep,noanswer"), b'EXEC Playback "beep,noanswer"\n'),
        (cmd.stream_file("beep"), b'STREAM FILE beep ""\n'),
        (cmd.stream_file("beep", "#*1", 100), b'STREAM FILE beep "#*1" 100\n'),
        (cmd.noop(), b"NOOP\n"),
        (cmd.noop("hello"), b'NOOP "hello"\n'),
        (cmd.hangup(), b"HANGUP\n"),
        (cmd.hangup("PJSIP/uac-00000011"), b"HANGUP PJSIP/uac-00000011\n"),
        (cmd.get_full_variable("${EXTEN}", "PJSIP/x-1"), b'GET FULL VARIABLE "${EXTEN}" PJSIP/x-1\n'),
    ],
)
def test_exact_wire_bytes(line: str, wire: bytes) -> None:
    assert cmd.encode_line(line) == wire


def test_quotes_and_backslashes_round_trip() -> None:
    value = 'say "hi" C:\\dir\\ \\"x\\'
    assert words(cmd.set_variable("V", value)) == ["SET", "VARIABLE", "V", value]


@pytest.mark.parametrize(
    "evil",
    [
        'x"\nEXEC System "rm -rf /"',
        "x\r\nEXEC System(touch /tmp/p)\n",
        'x\\"\nHANGUP',
        "a\x00EXEC Dial",
        '"\n',
        "\n\n\n",
    ],
)
def test_values_cannot_inject_a_second_command(evil: str) -> None:
    for line in (cmd.set_variable("DNC_RESULT", evil), cmd.verbose(evil), cmd.exec_app("NoOp", evil),
                 cmd.get_full_variable(evil), cmd.noop(evil)):
        argv = words(line)  # one line, and Asterisk sees the value as exactly one word
        expected = evil.replace("\r", " ").replace("\n", " ").replace("\x00", " ")
        assert expected in argv
        assert argv.index(expected) == len(argv) - (2 if line.startswith("VERBOSE") else 1)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_value_is_one_word_for_asterisk(value: str) -> None:
    argv = words(cmd.set_variable("X", value))
    assert argv == ["SET", "VARIABLE", "X", value.replace("\r", " ").replace("\n", " ").replace("\x00", " ")]


@pytest.mark.parametrize("name", ["", "A B", 'A"B', "A\\B", "A\nEXEC Dial", "A\rB", "A\tB", "A\x00", "A\x7f"])
def test_identifiers_that_would_need_quoting_are_refused(name: str) -> None:
    with pytest.raises(AgiEncodingError):
        cmd.get_variable(name)
    with pytest.raises(AgiEncodingError):
        cmd.set_variable(name, "v")
    with pytest.raises(AgiEncodingError):
        cmd.exec_app(name)
    with pytest.raises(AgiEncodingError):
        cmd.stream_file(name)


def test_encode_line_refuses_line_breaks_and_empty_commands() -> None:
    for bad in ("NOOP\nHANGUP", "NOOP\r", "NOOP\x00", "", "   "):
        with pytest.raises(AgiEncodingError):
            cmd.encode_line(bad)


def test_commands_longer_than_asterisks_buffer_are_refused() -> None:
    # Asterisk reads a command with fgets() into char[8192]: a longer line is cut and the rest is
    # executed as a *second command*, so a long value could smuggle one in.
    prefix = 'SET VARIABLE X "'
    fits = prefix + "a" * (cmd.MAX_COMMAND_BYTES - len(prefix) - 1) + '"'
    assert len(cmd.encode_line(fits)) == cmd.MAX_COMMAND_BYTES + 1
    smuggle = "a" * (8191 - len(prefix)) + 'EXEC System "id"'
    with pytest.raises(AgiEncodingError, match="split"):
        cmd.encode_line(cmd.set_variable("X", smuggle))
    with pytest.raises(AgiEncodingError):
        cmd.encode_line(prefix + "é" * 4090 + '"')  # counted in bytes, not characters


def test_argument_validation() -> None:
    with pytest.raises(AgiEncodingError):
        cmd.verbose("x", 5)
    with pytest.raises(AgiEncodingError):
        cmd.stream_file("beep", '1" HANGUP')
    with pytest.raises(AgiEncodingError):
        cmd.stream_file("beep", "", -1)
    assert isinstance(AgiEncodingError("x"), ValueError)
