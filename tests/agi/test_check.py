"""The /check handler over a real FastAGI server and a scripted fake Asterisk, on a SQLite store."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from dncgate.agi import AgiServer
from dncgate.model import Mode, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.store.sqlite import SqliteListStore
from tests.agi.agi_helpers import asterisk_parse_args, check_server, close_client, open_client, read_until_closed
from tests.agi.conftest import wait_idle

TENANTS = {
    "default": TenantPolicy(name="default", dial_plan=DialPlan(region="US", technical_prefixes=("9",))),
    "acme": TenantPolicy(name="acme", dial_plan=DialPlan(region="US"), reject_sip_code=603),
    "watch": TenantPolicy(name="watch", dial_plan=DialPlan(region="US"), mode=Mode.MONITOR),
}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[AgiServer, SqliteListStore]]:
    store = SqliteListStore(tmp_path / "agi.sqlite3")
    await store.replace_list("national", [12015550123])
    try:
        async with check_server(store, TENANTS, close_timeout=1) as agi:
            yield agi, store
    finally:
        await store.close()


def header(request: str, args: list[str], extension: str = "s") -> bytes:
    script = request.split("/", 3)[3]  # Asterisk sends what follows host/, query string included
    lines = [
        "agi_network: yes", f"agi_network_script: {script}", f"agi_request: {request}",
        "agi_channel: PJSIP/uac-00000001",
        "agi_language: en", "agi_type: PJSIP", "agi_uniqueid: 1795809160.17", "agi_callerid: 4001234567",
        "agi_calleridname: dialer", "agi_context: outbound", f"agi_extension: {extension}", "agi_priority: 1",
        "agi_accountcode: ", *(f"agi_arg_{i}: {a}" for i, a in enumerate(args, start=1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


async def fake_asterisk(port: int, request: str, args: list[str], variables: dict[str, str] | None = None,
                        extension: str = "s") -> list[list[str]]:
    """Send the header, answer every command like Asterisk would, return the commands as Asterisk parsed them."""
    variables = variables or {}
    reader, writer = await open_client(port)
    commands: list[list[str]] = []
    try:
        writer.write(header(request, args, extension))
        await writer.drain()
        while line := await asyncio.wait_for(reader.readline(), 30):
            argv = asterisk_parse_args(line.decode().rstrip("\n"))
            commands.append(argv)
            if argv[:2] == ["GET", "VARIABLE"]:
                value = variables.get(argv[2])
                writer.write(f"200 result=1 ({value})\n".encode() if value is not None else b"200 result=0\n")
            else:
                writer.write(b"200 result=0\n")
            await writer.drain()
    finally:
        await close_client(writer)
    return commands


def mset(commands: list[list[str]]) -> dict[str, str]:
    (cmd,) = [c for c in commands if c[:2] == ["EXEC", "MSet"]]
    return dict(pair.split("=", 1) for pair in cmd[2].split(","))


@pytest.mark.parametrize(
    ("request_url", "args", "verdict", "reason", "code"),
    [
        ("agi://127.0.0.1/check?tenant=default&purpose=marketing", ["2015550123"], "reject", "national_dnc", "607"),
        ("agi://127.0.0.1/check?tenant=default&purpose=marketing", ["912015550123"], "reject", "national_dnc", "607"),
        ("agi://127.0.0.1/check?tenant=acme&purpose=marketing", ["+12015550123"], "reject", "national_dnc", "603"),
        ("agi://127.0.0.1/check?tenant=acme&purpose=marketing", ["20155501"], "reject", "invalid_number", "603"),
        ("agi://127.0.0.1/check?tenant=default&purpose=service", ["2015550123"], "allow", "allowed_service", ""),
        ("agi://127.0.0.1/check?tenant=default&purpose=marketing", ["2015550124"], "allow", "allowed_clear", ""),
        ("agi://127.0.0.1/check?tenant=watch&purpose=marketing", ["2015550123"], "allow", "national_dnc", ""),
        ("agi://127.0.0.1/check?tenant=nobody&purpose=marketing", ["2015550124"], "reject", "unknown_tenant", "603"),
        ("agi://127.0.0.1/check?tenant=&purpose=marketing", ["2015550124"], "reject", "unknown_tenant", "603"),
        ("agi://127.0.0.1/check?tenant=nobody&purpose=service", ["2015550124"], "allow", "unknown_tenant", ""),
        ("agi://127.0.0.1/check?tenant=default&purpose=marketing", ["911"], "allow", "allowed_emergency", ""),
    ],
)
async def test_verdict_variables(server: tuple[AgiServer, SqliteListStore], request_url: str, args: list[str],
                                 verdict: str, reason: str, code: str) -> None:
    agi, _ = server
    commands = await fake_asterisk(agi.port, request_url, args)
    values = mset(commands)
    assert values["DNCGATE_VERDICT"] == verdict
    assert values["DNCGATE_REASON"] == reason
    assert values["DNCGATE_SIPCODE"] == code
    assert len(values["DNCGATE_DECISION_ID"]) == 32
    # a failed check (invalid number, unknown tenant) is no "does not accept marketing calls"
    declined = verdict == "reject" and reason not in {"invalid_number", "unknown_tenant"}
    assert values["DNCGATE_ANNOUNCEMENT"] == ("dncgate/en/declined" if declined else "")
    # Tenant and purpose came in the query string: no GET VARIABLE round trips on the call's path.
    assert [c[0] for c in commands] == ["EXEC"]


@pytest.mark.parametrize(("language", "announcement"), [
    ("../../../../tmp/x", "dncgate/en/declined"), ("${system id}", "dncgate/en/declined"),
    ("fr-CA", "dncgate/fr-CA/declined"), ("en_GB", "dncgate/en_GB/declined"),
])
async def test_the_language_is_a_language_tag_or_the_tenants_own(
    server: tuple[AgiServer, SqliteListStore], logs: list[MutableMapping[str, Any]], language: str, announcement: str,
) -> None:
    """Issue 11.14: ?language=../../../../tmp/x went out as DNCGATE_ANNOUNCEMENT=dncgate/../../../../tmp/x/declined."""
    agi, _ = server
    query = urllib.parse.urlencode({"tenant": "default", "purpose": "marketing", "language": language},
                                   quote_via=urllib.parse.quote)
    values = mset(await fake_asterisk(agi.port, f"agi://127.0.0.1/check?{query}", ["2015550123"]))
    assert values["DNCGATE_VERDICT"] == "reject"
    assert values["DNCGATE_ANNOUNCEMENT"] == announcement
    await wait_idle(agi)
    refused = [e for e in logs if e["event"] == "gate.language_refused"]
    expect_refused = not announcement.startswith(f"dncgate/{language}/")
    assert [(e["language"], e["used"], e["door"]) for e in refused] == ([(language, "en", "agi")] if expect_refused
                                                                         else [])


async def test_channel_variables_are_the_fallback(server: tuple[AgiServer, SqliteListStore]) -> None:
    agi, _ = server
    commands = await fake_asterisk(
        agi.port, "agi://127.0.0.1/check", [], {"DNCGATE_TENANT": "acme", "DNCGATE_PURPOSE": "marketing"},
        extension="2015550123",
    )
    assert [c[:3] for c in commands[:2]] == [["GET", "VARIABLE", "DNCGATE_TENANT"],
                                             ["GET", "VARIABLE", "DNCGATE_PURPOSE"]]
    values = mset(commands)
    assert (values["DNCGATE_VERDICT"], values["DNCGATE_SIPCODE"]) == ("reject", "603")


async def test_a_blank_purpose_is_the_tenants_default_not_a_channel_variable(
    server: tuple[AgiServer, SqliteListStore],
) -> None:
    """A dialplan variable that came out empty must not hand the choice to DNCGATE_PURPOSE, which
    a caller or an inherited variable may have set to "service"."""
    values = await _with_planted_channel(server, "tenant=default&purpose=&category=&entity=", "2015550123")
    assert (values["DNCGATE_VERDICT"], values["DNCGATE_REASON"]) == ("reject", "national_dnc")


async def _with_planted_channel(server: tuple[AgiServer, SqliteListStore], query: str, number: str) -> dict[str, str]:
    """The verdict variables for ``query``, with DNCGATE_TENANT=watch (monitor mode) and
    DNCGATE_PURPOSE=service planted on the channel: none of them may be read."""
    agi, _ = server
    commands = await fake_asterisk(agi.port, f"agi://127.0.0.1/check?{query}", [number],
                                   {"DNCGATE_TENANT": "watch", "DNCGATE_PURPOSE": "service"})
    assert [c[0] for c in commands] == ["EXEC"]  # no GET VARIABLE at all
    return mset(commands)


async def test_a_blank_tenant_is_a_configuration_fault_not_the_default_tenant(
    server: tuple[AgiServer, SqliteListStore], logs: list[MutableMapping[str, Any]],
) -> None:
    """``tenant=&purpose=`` is what a dialplan sends when URIENCODE is not registered (func_uri not
    loaded): decided ``unknown_tenant`` under the built-in failure defaults (the monitor-mode
    tenant the channel names is not used), with no announcement, and logged as such."""
    values = await _with_planted_channel(server, "tenant=&purpose=&category=&entity=", "")
    assert (values["DNCGATE_VERDICT"], values["DNCGATE_REASON"], values["DNCGATE_SIPCODE"]) == (
        "reject", "unknown_tenant", "603")
    assert values["DNCGATE_ANNOUNCEMENT"] == ""
    for _ in range(100):  # the log line comes after the verdict (bounded: 100 turns of the loop)
        if any(entry["event"] == "decision.rejected_on_failure" for entry in logs):
            break
        await asyncio.sleep(0)
    [logged] = [entry for entry in logs if entry["event"] == "decision.rejected_on_failure"]
    assert (logged["reason"], logged["tenant"]) == ("unknown_tenant", "unknown")
    assert "blank" in logged["detail"]


async def test_audit_records_the_raw_digits(server: tuple[AgiServer, SqliteListStore]) -> None:
    agi, store = server
    await fake_asterisk(agi.port, "agi://127.0.0.1/check?tenant=default&purpose=marketing&account=acc-9",
                        ["912015550123"])
    for _ in range(100):
        tail = await store.audit_tail(1)
        if tail:
            break
        await asyncio.sleep(0.01)
    (record,) = tail
    assert (record.dialled, record.callee, record.account, record.door) == (
        "912015550123", "+12015550123", "acc-9", "agi")
    assert record.caller_id == "4001234567"


async def test_unknown_script_sets_nothing(server: tuple[AgiServer, SqliteListStore]) -> None:
    agi, _ = server
    commands = await fake_asterisk(agi.port, "agi://127.0.0.1/other", ["2015550124"])
    assert commands == []


async def test_decision_is_recorded_after_the_socket_closes(
    server: tuple[AgiServer, SqliteListStore], logs: list[MutableMapping[str, Any]],
) -> None:
    """The log line and audit record are off the call's path: not even Asterisk's reply to the
    verdict waits for them, yet each decision is recorded once."""
    agi, store = server
    reader, writer = await open_client(agi.port)
    try:
        writer.write(header("agi://127.0.0.1/check?tenant=default&purpose=marketing", ["2015550123"]))
        await writer.drain()
        verdict = mset([asterisk_parse_args((await asyncio.wait_for(reader.readline(), 30)).decode().rstrip("\n"))])
        assert verdict["DNCGATE_VERDICT"] == "reject"
        await asyncio.sleep(0.05)  # the gate is idle, waiting for our reply: nothing recorded yet
        assert not [e for e in logs if e["event"].startswith("decision.")]
        writer.write(b"200 result=0\n")
        await writer.drain()
        assert await read_until_closed(reader) == b""
    finally:
        await close_client(writer)
    await wait_idle(agi)
    (line,) = [e for e in logs if e["event"].startswith("decision.")]
    assert (line["event"], line["callee"], line["decision_id"]) == (
        "decision.rejected", "+12015550123", verdict["DNCGATE_DECISION_ID"])
    for _ in range(100):
        if tail := await store.audit_tail(5):
            break
        await asyncio.sleep(0.01)
    assert [r.decision_id for r in tail] == [line["decision_id"]]


async def test_decision_is_recorded_when_asterisk_hangs_up_before_replying(
    server: tuple[AgiServer, SqliteListStore], logs: list[MutableMapping[str, Any]],
) -> None:
    agi, _ = server
    reader, writer = await open_client(agi.port)
    writer.write(header("agi://127.0.0.1/check?tenant=default&purpose=marketing", ["2015550124"]))
    await writer.drain()
    verdict = mset([asterisk_parse_args((await asyncio.wait_for(reader.readline(), 30)).decode().rstrip("\n"))])
    assert verdict["DNCGATE_VERDICT"] == "allow"
    writer.close()  # the channel went away with the verdict unanswered
    await wait_idle(agi)
    assert [e["event"] for e in logs if e["event"].startswith("decision.")] == ["decision.allowed"]
    assert "agi.session.peer_gone" in [e["event"] for e in logs]
