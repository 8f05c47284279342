"""A reactive fake FreeSWITCH for outbound-socket handler tests and the bench.

It dials the outbound server like ``socket 127.0.0.1:8084 async full`` does, sends a connect
reply recorded from FreeSWITCH 1.11.1 byte for byte (``tests/fixtures/esl/*.rx.raw``), then
answers whatever the handler sends: command replies as FreeSWITCH words them, and for each
``sendmsg execute`` with an ``Event-UUID`` the CHANNEL_EXECUTE_COMPLETE recorded for that
application (Application-UUID/-Data/-Response rewritten).  ``hangup`` and a final ``respond``
end the call with the recorded disconnect-notice, as FreeSWITCH does without ``linger``.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "esl"
_BLOCK = re.compile(rb"^=====\s+([0-9.]+) (>>> SENT to|<<< RECEIVED from) FreeSWITCH \((\d+) bytes\) =====\n", re.M)

_REPLIES = {
    "myevents": b"+OK Events Enabled",
    "linger": b"+OK will linger",
    "nolinger": b"+OK will not linger",
    "resume": b"+OK",
    "exit": b"+OK bye",
    "sendmsg": b"+OK",
}


def rx_steps(name: str) -> list[bytes]:
    """The byte blocks FreeSWITCH sent in an annotated transcript, in order."""
    text = (FIXTURES / f"{name}.txt").read_bytes()
    blocks: list[bytes] = []
    pos = 0
    while (m := _BLOCK.search(text, pos)) is not None:
        size = int(m.group(3))
        if m.group(2).startswith(b"<<<"):
            blocks.append(text[m.end() : m.end() + size])
        pos = m.end() + size
    return blocks


def connect_reply(name: str) -> bytes:
    """The exact connect reply (channel data) of a recorded outbound session."""
    return rx_steps(name)[0]


def with_variables(reply: bytes, **variables: str) -> bytes:
    """A recorded connect reply with extra ``variable_*`` headers (as dialplan ``set`` would add)."""
    head, sep, rest = reply.partition(b"Content-Type: command/reply\n")
    extra = b"".join(
        f"variable_{name}: {urllib.parse.quote(value, safe='')}\n".encode() for name, value in variables.items()
    )
    return head + extra + sep + rest


def with_destination(reply: bytes, destination: str) -> bytes:
    quoted = urllib.parse.quote(destination, safe="").encode()
    return re.sub(rb"^(Caller-Destination-Number|Channel-Destination-Number): .*$",
                  lambda m: m.group(1) + b": " + quoted, reply, flags=re.M)


def _templates() -> tuple[dict[str, bytes], bytes]:
    completes: dict[str, bytes] = {}
    notice = b""
    for name in ("outbound_2_85550001", "outbound_1_85551003", "outbound_3_5550003"):
        for block in rx_steps(name):
            if b"Event-Name: CHANNEL_EXECUTE_COMPLETE\n" in block:
                app = re.search(rb"^Application: (\S+)$", block, re.M)
                if app is not None:
                    completes.setdefault(app.group(1).decode(), block)
            elif block.startswith(b"Content-Type: text/disconnect-notice") and b"disconnect\n" in block:
                notice = notice or block
    return completes, notice


_COMPLETES, _DISCONNECT = _templates()


def execute_complete(app: str, data: str | None, event_uuid: str, response: str) -> bytes:
    """A recorded CHANNEL_EXECUTE_COMPLETE reframed for ``app`` / ``event_uuid``."""
    template = _COMPLETES.get(app) or _COMPLETES["set"]
    _, _, body = template.partition(b"\n\n")

    def sub(name: str, value: str | None, text: bytes) -> bytes:
        pattern = re.compile(rb"^" + name.encode() + rb": .*\n", re.M)
        if value is None:
            return pattern.sub(b"", text)
        line = name.encode() + b": " + urllib.parse.quote(value, safe="/").encode() + b"\n"
        return pattern.sub(lambda _m: line, text) if pattern.search(text) else text.rstrip(b"\n") + b"\n" + line + b"\n"

    body = sub("Application", app, body)
    body = sub("Application-Data", data, body)
    body = sub("Application-UUID", event_uuid, body)
    body = sub("Application-Response", response, body)
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


@dataclass
class Command:
    line: str
    headers: dict[str, str]

    @property
    def app(self) -> str | None:
        return self.headers.get("execute-app-name")

    @property
    def arg(self) -> str | None:
        return self.headers.get("execute-app-arg")

    def short(self) -> str:
        """``execute transfer 5551003 XML public`` / ``hangup CALL_REJECTED`` / ``myevents``."""
        if self.line.startswith("sendmsg"):
            if self.headers.get("call-command") == "hangup":
                return f"hangup {self.headers.get('hangup-cause', '')}"
            return " ".join(p for p in ("execute", self.app or "", self.arg) if p is not None)
        return self.line


# mod_sofia hangup_cause_to_sip() for the causes the gate uses (recorded: 603, 607).
SIP_CODES = {"CALL_REJECTED": 603, "UNWANTED": 607, "NORMAL_CLEARING": 200, "ORIGINATOR_CANCEL": 487}
STUCK = "stuck"  # a playback blocks until the caller gives up: CANCEL, 487 (recorded)
PARKED = "parked"  # closed before connect: parked, the caller sees only 100 (recorded)
DIALPLAN = "dialplan"  # closed after connect without a transfer: the next dialplan action runs


@dataclass
class CallTrace:
    commands: list[Command] = field(default_factory=list)
    connected_at: float = 0.0  # connect reply written
    verdict_at: float | None = None  # first command that carries the decision
    ended_by: str = ""  # "server" (it closed first) or "peer" (we hung up / dropped)
    # How the call ended on the switch: "hangup <CAUSE>", "respond <code> <phrase>", "uuid_kill <CAUSE>",
    # "sched_hangup <CAUSE>", "park_timeout <CAUSE>", "transfer <target>", DIALPLAN, PARKED, STUCK.
    outcome: str = ""
    variables: dict[str, str] = field(default_factory=dict)  # set with multiset / uuid_setvar
    queued: list[Command] = field(default_factory=list)  # accepted (+OK) while a playback blocked, never run
    scheduled: tuple[int, str] | None = None  # sched_hangup (+seconds, cause)

    def shorts(self) -> list[str]:
        return [c.short() for c in self.commands]

    @property
    def latency(self) -> float | None:
        return None if self.verdict_at is None else self.verdict_at - self.connected_at

    @property
    def sip_code(self) -> int | None:
        """The final response the caller got, as mod_sofia sends it for ``outcome``."""
        kind, _, rest = self.outcome.partition(" ")
        if kind == "respond":
            return int(rest.split(" ")[0])
        if self.outcome == STUCK:
            return 487
        if kind not in {"hangup", "uuid_kill", "sched_hangup", "park_timeout"}:
            return None
        override = self.variables.get("proto_specific_hangup_cause", "")
        if override.startswith("sip:"):  # sofia_on_hangup: the proto-specific cause wins
            return int(override[4:])
        return SIP_CODES.get(rest)


@dataclass
class FakeFreeSwitch:
    reply: bytes  # the connect reply to send
    playback_response: str = "FILE PLAYED"
    drop_on: str | None = None  # close without a reply when this command/app arrives
    silent_on: str | None = None  # never answer this command/app (a stalled FreeSWITCH)
    io_deadline: float = 5.0
    # False: a profile without rtp-timer-name and a caller that sends no RTP in early media.  A
    # playback then never completes, and every sendmsg after it gets +OK but waits behind it
    # (recorded on FreeSWITCH 1.11.1, real-switch-facts.md "Media timer").
    media_timer: bool = True
    blocks_on: str | None = None  # any app that, like that playback, never returns
    # The dialplan's park_timeout ("N:CAUSE", set before socket): ends a call the socket left parked.
    park_timeout: str | None = None

    async def call(self, port: int) -> CallTrace:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        trace = CallTrace()
        try:
            async with asyncio.timeout(self.io_deadline):
                try:
                    first = await reader.readexactly(9)
                except asyncio.IncompleteReadError:
                    # Closed before connect: socket_function parks the channel (recorded).
                    trace.ended_by = "server"
                    trace.outcome = f"park_timeout {self.park_timeout.split(':', 1)[1]}" if self.park_timeout \
                        else PARKED
                    return trace
                if first != b"connect\n\n":
                    raise AssertionError("the server must start with connect")
                writer.write(self.reply)
                await writer.drain()
                trace.connected_at = time.perf_counter()
                await self._serve(reader, writer, trace)
                return trace
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trace: CallTrace) -> None:
        events = blocked = False
        transferred = ""
        while True:
            try:
                frame = await reader.readuntil(b"\n\n")
            except asyncio.IncompleteReadError:
                trace.ended_by = "server"
                trace.outcome = _after_close(trace, blocked, transferred)
                return
            command = _parse(frame)
            trace.commands.append(command)
            name = command.app or command.line.split()[0]
            if trace.verdict_at is None and name in {"multiset", "set", "transfer", "hangup",
                                                    "respond", "pre_answer", "playback"}:
                trace.verdict_at = time.perf_counter()
            if command.headers.get("call-command") == "hangup":
                name = "hangup"
            if name == self.drop_on:
                trace.ended_by = "peer"
                return
            if name == self.silent_on:
                await reader.read()  # until the server gives up and closes
                trace.ended_by = "server"
                return
            if command.line.startswith("api "):
                body = self._api(command.line[4:].split(" "), trace)
                writer.write(b"Content-Type: api/response\nContent-Length: %d\n\n%s" % (len(body), body))
                if trace.outcome:  # uuid_kill: the channel hangs up, FreeSWITCH says goodbye and closes
                    writer.write(_DISCONNECT)
                    await writer.drain()
                    trace.ended_by = "peer"
                    return
                await writer.drain()
                continue
            text = _REPLIES.get(command.line.split()[0], b"-ERR command not found")
            writer.write(b"Content-Type: command/reply\nReply-Text: " + text + b"\n\n")
            events = events or command.line.startswith("myevents")
            if blocked and command.line.startswith("sendmsg"):
                trace.queued.append(command)  # +OK, and queued behind the playback that blocks
                await writer.drain()
                continue
            if name == "multiset":
                trace.variables.update(_multiset(command.arg or ""))
            if name == "transfer":
                transferred = command.arg or ""
            if name == "hangup" or (name == "respond" and (command.arg or "0")[:1] in "3456"):
                if events and name == "respond":
                    writer.write(self._complete(command))
                writer.write(_DISCONNECT)
                await writer.drain()
                trace.ended_by = "peer"
                trace.outcome = f"hangup {command.headers.get('hangup-cause', '')}" if name == "hangup" \
                    else f"respond {command.arg}"
                return
            if (name == "playback" and not self.media_timer) or name == self.blocks_on:
                blocked = True  # no CHANNEL_EXECUTE_COMPLETE: it waits for RTP that never comes
            elif events and command.headers.get("Event-UUID"):
                writer.write(self._complete(command))
            await writer.drain()

    def _api(self, argv: list[str], trace: CallTrace) -> bytes:
        """The API commands the gate uses, answered as mod_commands does (1.11.1)."""
        name, args = argv[0], argv[1:]
        if name == "uuid_getvar":
            return b"_undef_"
        if name not in {"uuid_kill", "uuid_break", "sched_hangup", "uuid_setvar"}:
            return b"-ERR %s Command not found!\n" % name.encode()
        uuid = args[1] if name == "sched_hangup" and len(args) > 1 else (args[0] if args else "")
        if uuid != self.unique_id:
            return b"-ERR No such channel!\n"
        if name == "uuid_kill":
            trace.outcome = f"uuid_kill {args[1] if len(args) > 1 else 'NORMAL_CLEARING'}"
        elif name == "uuid_break" and args[1:] == ["all"]:
            # Flushes what is queued; the CF_BREAK it sets is never seen by a playback blocked in a read.
            trace.queued.clear()
        elif name == "sched_hangup":
            trace.scheduled = (int(args[0].lstrip("+")), args[2] if len(args) > 2 else "ALLOTTED_TIMEOUT")
        elif name == "uuid_setvar" and len(args) > 2:
            trace.variables[args[1]] = args[2]
        return b"+OK\n"

    @property
    def unique_id(self) -> str:
        match = re.search(rb"^Unique-ID: (\S+)$", self.reply, re.M)
        return match.group(1).decode() if match else ""

    def _complete(self, command: Command) -> bytes:
        response = self.playback_response if command.app == "playback" else "_none_"
        return execute_complete(command.app or "", command.arg, command.headers["Event-UUID"], response)


def _after_close(trace: CallTrace, blocked: bool, transferred: str) -> str:
    """What the switch does with the call when the server closes the socket after connect."""
    if blocked:  # the socket app cannot return while the playback blocks; only a scheduled hangup ends it
        return f"sched_hangup {trace.scheduled[1]}" if trace.scheduled else STUCK
    return f"transfer {transferred}" if transferred else DIALPLAN


def _multiset(arg: str) -> dict[str, str]:
    pairs = arg[3:].split("|") if arg.startswith("^^|") else arg.split(" ")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def _parse(frame: bytes) -> Command:
    lines = frame.decode().strip("\n").split("\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return Command(lines[0], headers)
