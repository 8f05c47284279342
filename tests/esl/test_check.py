"""The FreeSWITCH outbound-socket check handler against a replaying fake FreeSWITCH.

Every call starts with a connect reply recorded from FreeSWITCH 1.11.1 (byte for byte, or with
variables/destination added the way the dialplan would); the fake answers each command as
FreeSWITCH did in the recordings.  The assertions are on the exact command sequence the handler
sends, because that sequence is what carries out the decision on a real switch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from esl_helpers import fixture_bytes, transcript_steps, uuid_sequence
from fake_freeswitch import CallTrace, FakeFreeSwitch, connect_reply, with_destination, with_variables

from dncgate.audit import AuditSink
from dncgate.esl.check import _multiset_arg, esl_check_handler, reject_guard_delay
from dncgate.esl.outbound import OutboundConfig, OutboundServer, OutboundSession
from dncgate.gate import Gate
from dncgate.model import Facts, Mode, Purpose, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.settings import AgiSettings, EslSettings, HttpServerSettings, Settings, StoreSettings
from dncgate.store.errors import StoreUnavailable
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import TEST_STORE_DEADLINE, serving

LISTED = "2015550123"  # on the national list
CLEAR = "2015550199"
SOUNDS = "/usr/share/freeswitch/sounds"
DECLINED = f"{SOUNDS}/dncgate/en/declined.wav"

TENANTS = {
    "default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"), reject_sip_code=603),
    "unwanted": TenantPolicy(name="unwanted", dial_plan=DialPlan(region="US"), reject_sip_code=607),
    "rejected": TenantPolicy(name="rejected", dial_plan=DialPlan(region="US"), reject_sip_code=608),
    "watch": TenantPolicy(name="watch", dial_plan=DialPlan(region="US"), mode=Mode.MONITOR),
    "svc": TenantPolicy(name="svc", dial_plan=DialPlan(region="US"), default_purpose=Purpose.SERVICE),
}
SETTINGS = EslSettings(strip_prefix="8", sounds_dir=SOUNDS)
# The recorded lab layout: ``transfer dnc_ok_<number> XML public``.
LAB = EslSettings(strip_prefix="8", sounds_dir=SOUNDS, transfer_to="dnc_ok_{number} XML {context}")

ALLOW_REPLY = connect_reply("outbound_1_85551003")  # fail-closed layout, destination 85551003
REJECT_REPLY = connect_reply("outbound_2_85550001")  # fail-closed layout, destination 85550001


class FailingStore(SqliteListStore):
    async def facts(self, tenant: str, number: int, *, entity: str = "", originators: Sequence[str] = ()) -> Facts:
        raise StoreUnavailable("connection refused")


@dataclass
class Lab:
    gate: Gate
    store: SqliteListStore

    async def call(
        self,
        reply: bytes,
        settings: EslSettings = SETTINGS,
        *,
        peer: FakeFreeSwitch | None = None,
        uuids: tuple[str, ...] = (),
        handler: Callable[[OutboundSession], Awaitable[None]] | None = None,
        **config: Any,
    ) -> tuple[CallTrace, list[dict[str, Any]]]:
        base: dict[str, Any] = {"port": 0, "connect_deadline": 30.0, "command_deadline": 30.0, "event_deadline": 30.0}
        base.update(config)
        factory = uuid_sequence(*uuids) if uuids else None
        fake = peer or FakeFreeSwitch(reply)
        with structlog.testing.capture_logs() as logs:
            async with OutboundServer(handler or esl_check_handler(self.gate, settings), OutboundConfig(**base),
                                      uuid_factory=factory) as server:
                trace = await fake.call(server.port)
        return trace, logs


async def _lab(path: Path, store: SqliteListStore) -> AsyncIterator[Lab]:
    await store.replace_list("national", [int("1" + LISTED)])
    audit = AuditSink(store)
    audit.start()
    try:
        yield Lab(Gate(TENANTS, store, audit,
                    store_deadline=TEST_STORE_DEADLINE), store)
    finally:
        await audit.close()
        await store.close()


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    async for value in _lab(tmp_path, SqliteListStore(tmp_path / "esl.sqlite3")):
        yield value


@pytest.fixture
async def broken_lab(tmp_path: Path) -> AsyncIterator[Lab]:
    async for value in _lab(tmp_path, FailingStore(tmp_path / "esl.sqlite3")):
        yield value


def events(logs: list[dict[str, Any]], prefix: str = "esl.check.") -> list[str]:
    return [e["event"] for e in logs if e["event"].startswith(prefix)]


def one(logs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (entry,) = [e for e in logs if e["event"] == name]
    return entry


def multiset(trace: CallTrace) -> dict[str, str]:
    (command,) = [c for c in trace.commands if c.app == "multiset"]
    assert command.arg is not None
    return dict(pair.split("=", 1) for pair in command.arg.split(" "))


REJECT_UUID = "3753a4b6-7830-45ee-9088-df11de005f1d"  # Unique-ID of REJECT_REPLY


def guard(final: str, settings: EslSettings = SETTINGS, uuid: str = REJECT_UUID) -> str:
    """The switch-side bound sent before the announcement: sched_hangup with the reject's cause."""
    cause = final.split(" ")[1] if final.startswith("hangup ") else "CALL_REJECTED"
    return f"api sched_hangup +{reject_guard_delay(settings)} {uuid} {cause}"


def reject_sequence(final: str) -> list[str]:
    return ["myevents", "execute multiset", guard(final), "execute pre_answer", f"execute playback {DECLINED}",
            final]


def shorts(trace: CallTrace) -> list[str]:
    return [s if not s.startswith("execute multiset") else "execute multiset" for s in trace.shorts()]


# --- reject ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "final", "code"),
    [
        ("default", "hangup CALL_REJECTED", "603"),  # recorded: 603 Decline
        ("unwanted", "hangup UNWANTED", "607"),  # recorded: 607 Unwanted
        ("rejected", "execute respond 608 Rejected", "608"),  # no hangup cause maps to 608
    ],
)
async def test_reject_sequence(lab: Lab, tenant: str, final: str, code: str) -> None:
    reply = with_variables(with_destination(REJECT_REPLY, "8" + LISTED), dncgate_tenant=tenant)
    trace, logs = await lab.call(reply)
    assert shorts(trace) == reject_sequence(final)
    assert trace.ended_by == "peer"  # FreeSWITCH hung up the call and closed the socket
    variables = multiset(trace)
    assert variables["dncgate_verdict"] == "reject"
    assert variables["dncgate_reason"] == "national_dnc"
    assert variables["dncgate_sip_code"] == code
    assert variables["dncgate_callee"] == LISTED
    assert variables["sip_reason"] == 'Q.850;cause=21;text="CALL_REJECTED"'
    assert len(variables["dncgate_decision_id"]) == 32
    rejected = one(logs, "esl.check.rejected")
    assert rejected["sip_code"] == int(code)
    assert rejected["decision_id"] == variables["dncgate_decision_id"]
    assert "transfer" not in " ".join(trace.shorts())


@pytest.mark.parametrize("language", ["${system id}", "../../../../tmp/x", "en/../../x", "e" * 40, "EN", "fr CA"])
async def test_a_language_that_is_no_language_tag_plays_the_tenants_own(lab: Lab, language: str) -> None:
    """Issue 11.14: variable_dncgate_language reached the playback path unchecked (FreeSWITCH expands ${...})."""
    reply = with_variables(with_destination(REJECT_REPLY, "8" + LISTED), dncgate_language=language)
    trace, logs = await lab.call(reply)
    assert shorts(trace) == reject_sequence("hangup CALL_REJECTED")  # the tenant's own: .../dncgate/en/declined.wav
    refused = one(logs, "gate.language_refused")
    assert (refused["language"], refused["used"], refused["door"]) == (language, "en", "esl")


async def test_a_language_tag_picks_its_announcement(lab: Lab) -> None:
    reply = with_variables(with_destination(REJECT_REPLY, "8" + LISTED), dncgate_language="fr-CA")
    trace, logs = await lab.call(reply)
    assert f"execute playback {SOUNDS}/dncgate/fr-CA/declined.wav" in trace.shorts()
    assert "gate.language_refused" not in [e["event"] for e in logs]


async def test_reject_sendmsg_bytes_match_the_recording(lab: Lab) -> None:
    """pre_answer / playback / hangup frames are byte-identical to the recorded 603 session."""
    recorded = [s.data for s in transcript_steps("outbound_2_85550001") if s.direction == "tx"]
    pre_answer, playback, hangup = recorded[-3:]
    settings = EslSettings(strip_prefix="8", sounds_dir="/srv/lab-fs/sounds")
    reply = with_destination(REJECT_REPLY, "8" + LISTED)
    uuids = ("multiset-uuid", "e3b743e5-6b29-48b1-9715-3fe2eb319102", "1cbc954c-5980-439d-9975-9fe7f5d79076")
    received = bytearray()
    # The lab's announcement file has another name; point the tenant's announcement at it.
    lab.gate.tenants = {"default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"),
                                                reject_sip_code=603, announcement="dnc_announcement")}
    peer = _RecordingPeer(reply, received)
    trace, _ = await lab.call(reply, settings, peer=peer, uuids=uuids)
    assert trace.shorts()[-1] == "hangup CALL_REJECTED"
    assert bytes(received).endswith(pre_answer + playback + hangup)


class _RecordingPeer(FakeFreeSwitch):
    """Keeps the raw bytes of every command after connect."""

    def __init__(self, reply: bytes, sink: bytearray) -> None:
        super().__init__(reply)
        self.sink = sink

    async def call(self, port: int) -> CallTrace:
        trace = await super().call(port)
        for command in trace.commands:
            lines = [command.line, *(f"{k}: {v}" for k, v in command.headers.items())]
            self.sink += ("\n".join(lines) + "\n\n").encode()
        return trace


async def test_reject_without_an_announcement_file(lab: Lab) -> None:
    reply = with_destination(REJECT_REPLY, "8" + LISTED)
    trace, logs = await lab.call(reply, peer=FakeFreeSwitch(reply, playback_response="FILE NOT FOUND"))
    assert shorts(trace) == reject_sequence("hangup CALL_REJECTED")
    assert one(logs, "esl.check.announcement_not_played")["response"] == "FILE NOT FOUND"


async def test_announcement_can_be_switched_off(lab: Lab) -> None:
    reply = with_destination(REJECT_REPLY, "8" + LISTED)
    trace, _ = await lab.call(reply, EslSettings(strip_prefix="8", announce=False))
    assert shorts(trace) == ["myevents", "execute multiset", "hangup CALL_REJECTED"]


# --- allow -------------------------------------------------------------------------------------


async def test_allow_transfers_to_the_continuation(lab: Lab) -> None:
    reply = with_destination(ALLOW_REPLY, "8" + CLEAR)
    trace, logs = await lab.call(reply)
    assert shorts(trace) == ["myevents", "execute multiset", f"execute transfer {CLEAR} XML dncgate_allowed"]
    assert trace.ended_by == "server"  # we close after the transfer completed
    variables = multiset(trace)
    assert variables["dncgate_verdict"] == "allow"
    assert variables["dncgate_reason"] == "allowed_clear"
    assert "sip_reason" not in variables
    allowed = one(logs, "esl.check.allowed")
    assert allowed["transfer"] == f"{CLEAR} XML dncgate_allowed"
    assert allowed["response"] == "_none_"


async def test_allow_transfer_bytes_match_the_recording(tmp_path: Path) -> None:
    """The recorded lab call (85551003, a service call here) leaves with the recorded transfer frame."""
    store = SqliteListStore(tmp_path / "svc.sqlite3")
    audit = AuditSink(store)
    audit.start()
    try:
        gate = Gate({"default": TenantPolicy(name="default", default_purpose=Purpose.SERVICE)}, store, audit,
                    store_deadline=TEST_STORE_DEADLINE)
        recorded = [s.data for s in transcript_steps("outbound_1_85551003") if s.direction == "tx"][-1]
        received = bytearray()
        lab = Lab(gate, store)
        trace, logs = await lab.call(ALLOW_REPLY, LAB, peer=_RecordingPeer(ALLOW_REPLY, received),
                                     uuids=("multiset-uuid", "bd77de45-ca74-451d-b24c-dd2888164abc"))
    finally:
        await audit.close()
        await store.close()
    assert bytes(received).endswith(recorded)
    assert recorded in fixture_bytes("outbound_1_85551003.tx.raw")
    assert trace.shorts()[-1] == "execute transfer dnc_ok_5551003 XML public"
    # 5551003 has no area code: invalid; a service call is allowed on failure, and says so.
    assert one(logs, "esl.check.allowed_on_failure")["reason"] == "invalid_number"


async def test_monitor_mode_allows_and_records_the_would_be_reject(lab: Lab) -> None:
    reply = with_variables(with_destination(ALLOW_REPLY, "8" + LISTED), dncgate_tenant="watch")
    trace, logs = await lab.call(reply)
    assert shorts(trace) == ["myevents", "execute multiset", f"execute transfer {LISTED} XML dncgate_allowed"]
    variables = multiset(trace)
    assert variables["dncgate_verdict"] == "allow"
    assert variables["dncgate_outcome"] == "reject"
    assert variables["dncgate_reason"] == "national_dnc"
    assert one(logs, "esl.check.allowed")["monitored_outcome"] == "reject"


async def test_service_call_to_a_listed_number_is_allowed(lab: Lab) -> None:
    reply = with_variables(with_destination(ALLOW_REPLY, "8" + LISTED), dncgate_purpose="service")
    trace, logs = await lab.call(reply)
    assert trace.shorts()[-1] == f"execute transfer {LISTED} XML dncgate_allowed"
    assert multiset(trace)["dncgate_reason"] == "allowed_service"
    assert "esl.check.allowed_on_failure" not in events(logs)


async def test_channel_variables_feed_the_request(lab: Lab) -> None:
    reply = with_variables(
        with_destination(ALLOW_REPLY, "anything"),
        dncgate_number="+1" + LISTED, dncgate_tenant="unwanted", dncgate_purpose="marketing",
        dncgate_category="finance", accountcode="acct-7", dncgate_entity="acme-corp",
    )
    trace, logs = await lab.call(reply)
    assert trace.shorts()[-1] == "hangup UNWANTED"
    decision = one(logs, "decision.rejected")
    assert decision["tenant"] == "unwanted"
    assert decision["callee"] == "+1" + LISTED
    assert decision["door"] == "esl"
    tail = await lab.store.audit_tail(1)
    assert tail == [] or tail[0].door == "esl"


# --- failures ----------------------------------------------------------------------------------


async def test_store_failure_rejects_marketing_with_the_check_failed_code(broken_lab: Lab) -> None:
    reply = with_variables(with_destination(REJECT_REPLY, "8" + CLEAR), dncgate_tenant="unwanted")
    trace, logs = await broken_lab.call(reply)
    # check_failed_sip_code 603, not 607; no announcement: the callee declined nothing
    assert shorts(trace) == ["myevents", "execute multiset", "hangup CALL_REJECTED"]
    assert multiset(trace)["dncgate_reason"] == "check_failed"
    assert one(logs, "decision.rejected_on_failure")["reason"] == "check_failed"


async def test_an_unknown_tenant_is_refused_as_a_configuration_fault_without_an_announcement(lab: Lab) -> None:
    """``dncgate_tenant`` naming no configured tenant: not the default tenant's clear verdict."""
    reply = with_variables(with_destination(REJECT_REPLY, "8" + CLEAR), dncgate_tenant="unwantd")
    trace, logs = await lab.call(reply)
    assert shorts(trace) == ["myevents", "execute multiset", "hangup CALL_REJECTED"]  # 603: the built-in default
    assert multiset(trace)["dncgate_reason"] == "unknown_tenant"
    logged = one(logs, "decision.rejected_on_failure")
    assert (logged["reason"], logged["tenant"], logged["detail"]) == (
        "unknown_tenant", "unwantd", "tenant 'unwantd' is not configured")


async def test_store_failure_lets_a_service_call_through_out_loud(broken_lab: Lab) -> None:
    reply = with_variables(with_destination(ALLOW_REPLY, "8" + CLEAR), dncgate_purpose="service")
    trace, logs = await broken_lab.call(reply)
    assert trace.shorts()[-1] == f"execute transfer {CLEAR} XML dncgate_allowed"
    assert one(logs, "esl.check.allowed_on_failure")["reason"] == "check_failed"


@pytest.mark.parametrize("destination", ["8", "8hello", "8%24%7Bjoe%7D", "8" + "1" * 300])
async def test_bogus_destination_is_rejected(lab: Lab, destination: str) -> None:
    reply = with_destination(REJECT_REPLY, destination)
    trace, _ = await lab.call(reply)
    assert shorts(trace) == ["myevents", "execute multiset", "hangup CALL_REJECTED"]  # no announcement
    variables = multiset(trace)
    assert variables["dncgate_reason"] == "invalid_number"
    assert not set(variables.get("dncgate_callee", "")) & set("${}% ")


async def test_unsafe_number_is_never_transferred(lab: Lab) -> None:
    """An allowed (service) call whose number cannot be a dialplan argument is left to the reject."""
    reply = with_variables(with_destination(ALLOW_REPLY, "8${x} XML default"), dncgate_purpose="service")
    trace, logs = await lab.call(reply)
    assert shorts(trace) == ["myevents", "execute multiset"]
    assert trace.ended_by == "server"
    assert "esl.check.transfer_refused" in events(logs)


async def test_gate_raising_ends_in_the_dialplan_reject(lab: Lab) -> None:
    async def explode(*_: Any) -> None:
        raise RuntimeError("bug")

    lab.gate.check = explode  # type: ignore[method-assign]
    trace, logs = await lab.call(with_destination(ALLOW_REPLY, "8" + CLEAR))
    assert trace.commands == []  # nothing sent: the socket closes, the dialplan responds 603
    assert trace.ended_by == "server"
    failed = one(logs, "esl.check.failed")
    assert failed["stage"] == "gate"
    assert failed["fallback"] == "dialplan rejects"


async def test_gate_raising_on_a_service_call_says_it_may_continue(lab: Lab) -> None:
    async def explode(*_: Any) -> None:
        raise RuntimeError("bug")

    lab.gate.check = explode  # type: ignore[method-assign]
    reply = with_variables(with_destination(ALLOW_REPLY, "8" + CLEAR), dncgate_purpose="service")
    trace, logs = await lab.call(reply)
    assert trace.commands == []
    assert "esl.check.failed_service_may_continue" in events(logs)


@pytest.mark.parametrize(("drop_on", "stage"), [("myevents", "myevents"), ("multiset", "set_variables"),
                                                  ("playback", "reject"), ("hangup", "reject")])
async def test_peer_gone_mid_handler(lab: Lab, drop_on: str, stage: str) -> None:
    reply = with_destination(REJECT_REPLY, "8" + LISTED)
    trace, logs = await lab.call(reply, peer=FakeFreeSwitch(reply, drop_on=drop_on))
    assert trace.ended_by == "peer"
    assert one(logs, "esl.check.failed")["stage"] == stage
    assert one(logs, "esl.session.closed")["outcome"] == "peer_closed"


async def test_peer_gone_before_the_transfer_completes(lab: Lab) -> None:
    reply = with_destination(ALLOW_REPLY, "8" + CLEAR)
    trace, logs = await lab.call(reply, peer=FakeFreeSwitch(reply, drop_on="transfer"))
    assert trace.shorts()[-1].startswith("execute transfer")
    assert one(logs, "esl.check.failed")["stage"] == "transfer"
    assert "esl.check.allowed" not in events(logs)


async def test_stalled_freeswitch_times_out_without_allowing(lab: Lab) -> None:
    reply = with_destination(ALLOW_REPLY, "8" + CLEAR)
    trace, logs = await lab.call(reply, peer=FakeFreeSwitch(reply, silent_on="multiset"), command_deadline=0.2)
    assert [c.app for c in trace.commands] == [None, "multiset"]
    assert one(logs, "esl.session.closed")["outcome"] == "timeout"
    assert "esl.check.allowed" not in events(logs)


async def test_unconfirmed_transfer_is_logged(lab: Lab) -> None:
    """+OK for the transfer but no CHANNEL_EXECUTE_COMPLETE within the settle deadline."""
    reply = with_destination(ALLOW_REPLY, "8" + CLEAR)
    settings = EslSettings(strip_prefix="8", settle_deadline=0.1)
    peer = _NoCompleteFor(reply, "transfer")
    trace, logs = await lab.call(reply, settings, peer=peer)
    assert trace.shorts()[-1] == f"execute transfer {CLEAR} XML dncgate_allowed"
    assert "esl.check.transfer_unconfirmed" in events(logs)


class _NoCompleteFor(FakeFreeSwitch):
    def __init__(self, reply: bytes, app: str) -> None:
        super().__init__(reply)
        self.app = app

    def _complete(self, command: Any) -> bytes:
        return b"" if command.app == self.app else super()._complete(command)


async def test_no_path_allows_without_a_transfer(lab: Lab, broken_lab: Lab) -> None:
    """Across every scenario: a call is let through only by a transfer after verdict=allow."""
    scenarios: list[tuple[Lab, bytes, FakeFreeSwitch | None]] = []
    for tenant in TENANTS:
        for number in (LISTED, CLEAR, "5551003", "junk"):
            for purpose in ("", "service", "marketing"):
                reply = with_variables(with_destination(ALLOW_REPLY, "8" + number), dncgate_tenant=tenant,
                                       **({"dncgate_purpose": purpose} if purpose else {}))
                scenarios.append((lab, reply, None))
                scenarios.append((broken_lab, reply, None))
                scenarios.append((lab, reply, FakeFreeSwitch(reply, drop_on="multiset")))
    results = await asyncio.gather(*(which.call(reply, peer=peer) for which, reply, peer in scenarios))
    transferred = 0
    for trace, _ in results:
        assert "resume" not in trace.shorts()  # resume would let the dialplan run on
        transfers = [c for c in trace.commands if c.app == "transfer"]
        if transfers:
            transferred += 1
            assert multiset(trace)["dncgate_verdict"] == "allow"
            assert trace.commands[-1].app == "transfer"
        elif trace.commands and trace.commands[-1].app != "multiset":
            last = trace.shorts()[-1]
            assert last.startswith(("hangup ", "execute respond 6"))
    assert 0 < transferred < len(results)


def test_multiset_argument_forms() -> None:
    assert _multiset_arg({"a": "1", "b": "2"}) == "a=1 b=2"
    assert _multiset_arg({"a": "1", "sip_reason": 'Q.850;cause=21;text="Call rejected"'}) == (
        '^^|a=1|sip_reason=Q.850;cause=21;text="Call rejected"'
    )
    with pytest.raises(ValueError, match="unsafe"):
        _multiset_arg({"a": "${x}"})


def esl_only(tmp_path: Path, esl: EslSettings | None = None) -> Settings:
    """serve's configuration with the ESL door alone on a loopback port, on a SQLite store."""
    return Settings(
        source="test", store=StoreSettings(path=tmp_path / "serve.sqlite3"), tenants=TENANTS,
        agi=AgiSettings(enabled=False, port=0), http=HttpServerSettings(enabled=False, port=0),
        esl=esl or EslSettings(enabled=True, port=0),
    )


async def test_serve_starts_the_esl_door(tmp_path: Path) -> None:
    async with serving(esl_only(tmp_path)) as running:
        assert running.esl_port
        trace = await FakeFreeSwitch(with_destination(ALLOW_REPLY, "8" + CLEAR)).call(running.esl_port)
        # The service runs the default settings: no prefix configured, so 8<number> is checked as dialled.
        assert trace.commands[0].line == "myevents"


async def test_serve_applies_the_esl_handler_keys_of_the_config(tmp_path: Path) -> None:
    handler = EslSettings(enabled=True, port=0, strip_prefix="8", transfer_to="dnc_ok_{number} XML {context}")
    async with serving(esl_only(tmp_path, handler), lists={"national": [int("1" + LISTED)]}) as running:
        assert running.esl_port
        trace = await FakeFreeSwitch(with_destination(ALLOW_REPLY, "8" + CLEAR)).call(running.esl_port)
        # the prefix is stripped before the check and the continuation follows the configured template
        assert trace.shorts()[-1] == f"execute transfer dnc_ok_{CLEAR} XML public"
