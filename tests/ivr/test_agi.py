"""The IVR over FastAGI (route /ivr on the gate's AgiServer) against a scripted fake Asterisk.

The fake sends the header Asterisk 22 sends, then answers every command the way res_agi does:
STREAM FILE ``200 result=0 endpos=N`` (or the ASCII code of a key that interrupted it), GET DATA
``200 result=<digits>`` / ``200 result= (timeout)``, WAIT FOR DIGIT ``200 result=<code>`` / ``0``,
and a hang-up as an unprompted ``HANGUP`` line followed by ``200 result=-1``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog

from dncgate.agi import AgiServer
from dncgate.agi.check import check_handler
from dncgate.consent.model import Action, Channel
from dncgate.ivr.agi import ivr_agi_handler, with_ivr
from dncgate.store.errors import StoreUnavailable
from tests.agi.agi_helpers import asterisk_parse_args, close_client, open_client
from tests.conftest import serving
from tests.ivr.conftest import CALLER, IvrLab

HANGUP = "HANGUP"  # in a script: the caller hangs up at this command


@dataclass
class FakeAsterisk:
    """Keys to press, in order: each GET DATA takes one entry (digits, "" for a timeout, or HANGUP);
    ``interrupt`` maps a STREAM FILE's sound name to the key that interrupts it, ``waits`` feeds WAIT FOR DIGIT."""

    keys: list[str] = field(default_factory=list)
    interrupt: dict[str, str] = field(default_factory=dict)
    waits: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)

    def header(self, script: str, callerid: str, callingpres: int, language: str) -> bytes:
        lines = [
            "agi_network: yes", f"agi_network_script: {script}", f"agi_request: agi://127.0.0.1/{script}",
            "agi_channel: PJSIP/dialer-00000007", f"agi_language: {language}", "agi_type: PJSIP",
            "agi_uniqueid: 1795809170.42", "agi_version: 22.5.2", f"agi_callerid: {callerid}",
            "agi_calleridname: subscriber", f"agi_callingpres: {callingpres}", "agi_callingani2: 0",
            "agi_callington: 0", "agi_callingtns: 0", "agi_dnid: 4000", "agi_rdnis: unknown",
            "agi_context: dncgate-ivr", "agi_extension: s", "agi_priority: 2", "agi_enhanced: 0.0",
            "agi_accountcode: ", "agi_threadid: 140241731036864",
        ]
        return ("\n".join(lines) + "\n\n").encode()

    def reply(self, argv: list[str]) -> tuple[str, bool]:
        """The reply line and whether the caller is gone after it."""
        verb = argv[:2]
        if verb == ["STREAM", "FILE"]:
            key = self.interrupt.pop(argv[2], "")
            if key and key not in argv[3]:
                raise AssertionError(f"{key!r} pressed during {argv[2]} is not an escape digit")
            return (f"200 result={ord(key)} endpos=4000" if key else "200 result=0 endpos=12000"), False
        if verb == ["GET", "DATA"]:
            keys = self.keys.pop(0) if self.keys else ""
            if keys == HANGUP:
                return "HANGUP\n200 result=-1", True
            return (f"200 result={keys}" if keys else "200 result= (timeout)"), False
        if verb == ["WAIT", "FOR"]:
            key = self.waits.pop(0) if self.waits else ""
            return f"200 result={ord(key) if key else 0}", False
        if argv[0] == "HANGUP":
            return "200 result=1", False
        return "200 result=0", False

    async def call(self, port: int, script: str = "ivr?tenant=acme", *, callerid: str = CALLER,
                   callingpres: int = 0, language: str = "en") -> list[list[str]]:
        reader, writer = await open_client(port)
        gone = False
        try:
            writer.write(self.header(script, callerid, callingpres, language))
            await writer.drain()
            while line := await asyncio.wait_for(reader.readline(), 30):
                argv = asterisk_parse_args(line.decode().rstrip("\n"))
                self.commands.append(argv)
                if gone:
                    writer.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
                else:
                    text, gone = self.reply(argv)
                    writer.write(text.encode() + b"\n")
                await writer.drain()
        finally:
            await close_client(writer)
        return self.commands


@pytest.fixture
async def agi(ivr_lab: IvrLab) -> AsyncIterator[AgiServer]:
    server = AgiServer(with_ivr(check_handler(ivr_lab.gate), ivr_agi_handler(ivr_lab.ctx)), port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.close(timeout=1)


def lines(commands: list[list[str]]) -> list[str]:
    return [" ".join(c) for c in commands]


async def test_decline_all_takes_effect_at_once_with_ivr_evidence(agi: AgiServer, ivr_lab: IvrLab) -> None:
    assert await ivr_lab.decide() == "allowed_clear"
    fake = FakeAsterisk(keys=["1", HANGUP])
    with structlog.testing.capture_logs() as logs:
        commands = await fake.call(agi.port)
    assert lines(commands[:4]) == [
        "STREAM FILE dncgate/en/ivr-welcome 0123456789*#",
        "GET DATA dncgate/en/ivr-menu 200 1",
        "STREAM FILE dncgate/en/ivr-saved-decline-all ",
        "GET DATA dncgate/en/ivr-menu 200 1",
    ]
    # the next decision sees it
    assert await ivr_lab.decide() == "category_declined"
    (event,) = await ivr_lab.history()
    assert (event.action, event.callee, event.categories) == (Action.DECLINE, CALLER, ())
    assert event.evidence is not None
    assert event.evidence.channel is Channel.IVR
    assert event.evidence.source == CALLER
    assert event.evidence.captured_by == "ivr"
    assert event.evidence.shown == "dncgate/en/ivr-menu keys=1"
    assert event.detail == "ivr agi call 1795809170.42"
    # queued for upload to the national platform
    assert [e.id for e in await ivr_lab.ledger.outbox("acme")] == [event.id]
    finished = [e for e in logs if e["event"] == "ivr.finished"]
    assert finished[0]["reason"] == "caller"


async def test_categories_then_reallow(agi: AgiServer, ivr_lab: IvrLab) -> None:
    await FakeAsterisk(keys=["2", "13", HANGUP]).call(agi.port)
    assert await ivr_lab.decide(category="finance") == "category_declined"
    assert await ivr_lab.decide(category="education") == "category_declined"
    assert await ivr_lab.decide(category="travel") == "allowed_clear"
    commands = await FakeAsterisk(keys=["9", HANGUP]).call(agi.port)
    assert "STREAM FILE dncgate/en/ivr-saved-reallowed " in lines(commands)
    assert await ivr_lab.decide(category="finance") == "allowed_clear"
    actions = [(e.action, e.categories) for e in await ivr_lab.history()]
    assert actions == [(Action.DECLINE, ("finance", "education")), (Action.WITHDRAW, ())]
    assert len(await ivr_lab.ledger.outbox("acme")) == 2


async def test_barge_in_during_the_category_list(agi: AgiServer, ivr_lab: IvrLab) -> None:
    # "2" interrupts the welcome; "4" interrupts the first category name, then 8 and # by WAIT FOR DIGIT
    fake = FakeAsterisk(keys=[HANGUP], interrupt={"dncgate/en/ivr-welcome": "2",
                                                  "dncgate/en/ivr-cat-finance": "4"}, waits=["8", "#"])
    commands = lines(await fake.call(agi.port))
    assert commands[:5] == [
        "STREAM FILE dncgate/en/ivr-welcome 0123456789*#",
        "STREAM FILE dncgate/en/ivr-categories-intro 0123456789*#",
        "STREAM FILE dncgate/en/ivr-cat-finance 0123456789*#",
        "WAIT FOR DIGIT 200",
        "WAIT FOR DIGIT 200",
    ]
    (event,) = await ivr_lab.history()
    assert event.categories == ("health", "food")
    assert event.evidence is not None
    assert event.evidence.shown == "dncgate/en/ivr-categories-intro keys=48#"


async def test_withdraw_a_consent(agi: AgiServer, ivr_lab: IvrLab) -> None:
    await ivr_lab.grant("bank-1")
    await ivr_lab.grant("shop-2")
    assert await ivr_lab.decide(entity="shop-2") == "allowed_consent"
    commands = lines(await FakeAsterisk(keys=["3", "2", HANGUP]).call(agi.port))
    listing = [c for c in commands if c.startswith("STREAM FILE dncgate/en/ivr-business")]
    assert len(listing) == 2
    spelled = [c.split()[2] for c in commands if c.startswith("STREAM FILE dncgate/en/ivr-char-")]
    assert spelled[:4] == ["dncgate/en/ivr-char-b", "dncgate/en/ivr-char-a", "dncgate/en/ivr-char-n",
                           "dncgate/en/ivr-char-k"]
    assert "GET DATA dncgate/en/ivr-consents-choose 200 1" in commands
    assert "STREAM FILE dncgate/en/ivr-consent-withdrawn " in commands
    assert await ivr_lab.decide(entity="shop-2") == "consent_revoked"
    assert await ivr_lab.decide(entity="bank-1") == "allowed_consent"
    revoke = (await ivr_lab.history())[-1]
    assert (revoke.action, revoke.entity) == (Action.REVOKE, "shop-2")
    assert await ivr_lab.ledger.outbox("acme") == []  # consents are not registry records


async def test_status_reads_the_ledger(agi: AgiServer, ivr_lab: IvrLab) -> None:
    await FakeAsterisk(keys=["1", HANGUP]).call(agi.port)
    commands = lines(await FakeAsterisk(keys=["4", HANGUP]).call(agi.port))
    assert "STREAM FILE dncgate/en/ivr-status-declined-all " in commands
    assert "STREAM FILE dncgate/en/ivr-no-consents " in commands


@pytest.mark.parametrize(("callerid", "pres"), [
    ("unknown", 0),  # Asterisk's agi_callerid when there is none
    ("anonymous", 0),
    ("", 0),
    (CALLER, 0x20),  # presentation restricted (withheld)
    (CALLER, 0x43),  # number unavailable
    ("110", 0),  # not a subscriber number
])
async def test_unidentified_caller(agi: AgiServer, ivr_lab: IvrLab, callerid: str, pres: int) -> None:
    commands = lines(await FakeAsterisk(keys=["1"]).call(agi.port, callerid=callerid, callingpres=pres))
    assert commands == ["STREAM FILE dncgate/en/ivr-unidentified ", "HANGUP"]
    assert await ivr_lab.history() == []


async def test_timeouts_and_invalid_keys_end_in_goodbye(agi: AgiServer, ivr_lab: IvrLab) -> None:
    commands = lines(await FakeAsterisk(keys=["", "7", ""]).call(agi.port))
    assert commands == [
        "STREAM FILE dncgate/en/ivr-welcome 0123456789*#", "GET DATA dncgate/en/ivr-menu 200 1",
        "STREAM FILE dncgate/en/ivr-no-input ",
        "GET DATA dncgate/en/ivr-menu 200 1", "STREAM FILE dncgate/en/ivr-invalid ",
        "GET DATA dncgate/en/ivr-menu 200 1", "STREAM FILE dncgate/en/ivr-no-input ",
        "STREAM FILE dncgate/en/ivr-goodbye ", "HANGUP",
    ]


async def test_language_and_dial_plan_come_from_the_tenant_or_the_request(agi: AgiServer, ivr_lab: IvrLab) -> None:
    # tenant china: Chinese prompts by default, and the caller ID in national form
    commands = lines(await FakeAsterisk(keys=["1", HANGUP]).call(
        agi.port, "ivr?tenant=china", callerid="13800138000", language="en"))
    assert commands[1] == "GET DATA dncgate/en/ivr-menu 200 1"  # agi_language wins over the tenant's
    commands = lines(await FakeAsterisk(keys=[HANGUP]).call(agi.port, "ivr?tenant=china", language="fr",
                                                            callerid="13800138000"))
    assert commands[0] == "STREAM FILE dncgate/zh/ivr-welcome 0123456789*#"
    commands = lines(await FakeAsterisk(keys=[HANGUP]).call(agi.port, "ivr?tenant=acme&language=zh"))
    assert commands[0] == "STREAM FILE dncgate/zh/ivr-welcome 0123456789*#"
    (event,) = await ivr_lab.history("china", "+8613800138000")
    assert event.evidence is not None
    assert event.evidence.source == "13800138000"
    # a technical prefix of the tenant's dial plan is stripped from the caller ID too
    await FakeAsterisk(keys=["1", HANGUP]).call(agi.port, callerid="9" + CALLER[2:])
    assert [e.callee for e in await ivr_lab.history()] == [CALLER]


async def test_ledger_write_failure_is_told_and_ends_the_call(agi: AgiServer, ivr_lab: IvrLab) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("disk full")

    ivr_lab.ledger.append = broken  # type: ignore[method-assign]
    commands = lines(await FakeAsterisk(keys=["1"]).call(agi.port))
    assert commands[-2:] == ["STREAM FILE dncgate/en/ivr-failed ", "HANGUP"]


async def test_ledger_read_failure_is_told_and_ends_the_call(agi: AgiServer, ivr_lab: IvrLab) -> None:
    await ivr_lab.ledger.close()
    commands = lines(await FakeAsterisk(keys=["1"]).call(agi.port))
    assert commands == ["STREAM FILE dncgate/en/ivr-unavailable ", "HANGUP"]


async def test_check_is_unchanged_on_the_same_server(agi: AgiServer) -> None:
    fake = FakeAsterisk()
    reader, writer = await open_client(agi.port)
    try:
        writer.write(fake.header("check?tenant=acme&purpose=marketing", "4001234567", 0, "en")
                     .replace(b"agi_threadid", b"agi_arg_1: 2015550123\nagi_threadid"))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        argv = asterisk_parse_args(line.decode().rstrip("\n"))
        assert argv[:2] == ["EXEC", "MSet"]
        assert "DNCGATE_REASON=national_dnc" in argv[2]
        writer.write(b"200 result=0\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 30) == b""
    finally:
        await close_client(writer)


async def test_serve_applies_the_ivr_keys_of_the_config(tmp_path: Path) -> None:
    from dncgate.settings import load

    toml = tmp_path / "dncgate.toml"
    toml.write_text(f"""
[store]
path = "{tmp_path / 'serve.sqlite3'}"
[agi]
port = 0
[http]
enabled = false
[ivr]
digit_timeout_s = 4.5
max_failures = 1
[tenants.acme]
region = "US"
""")
    config = load(toml, environ={})
    async with serving(config) as running:
        assert running.agi_port
        commands = lines(await FakeAsterisk(keys=[""]).call(running.agi_port))
    # GET DATA waits digit_timeout_s (in ms); one failure is already max_failures
    assert commands == [
        "STREAM FILE dncgate/en/ivr-welcome 0123456789*#", "GET DATA dncgate/en/ivr-menu 4500 1",
        "STREAM FILE dncgate/en/ivr-no-input ", "STREAM FILE dncgate/en/ivr-goodbye ", "HANGUP",
    ]
