"""A STOP the ledger cannot record survives a restart: spooled on disk, replayed at start, recorded
with the time the reply came; a reply recorded before a crash is not recorded again."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

from dncgate.backoff import Backoff
from dncgate.esl.messages import Event, Headers
from dncgate.messages.chatplan import ChatplanDoor
from dncgate.messages.model import Message
from dncgate.messages.opt_out_spool import FILE_NAME, OptOutSpool
from dncgate.messages.retry import OptOutRetries
from dncgate.service import _opt_out_spool
from dncgate.settings import Settings, StoreSettings
from tests.messages.conftest import CONSENTED, MARKETING_PORT, Lab

FAST = Backoff(initial=0.01, maximum=0.05)


def stop_reply() -> Event:
    """The MESSAGE event the shipped chatplan fires for a subscriber's STOP to the marketing port."""
    return Event("plain", Headers([
        ("Event-Name", "MESSAGE"), ("dncgate_check", "true"), ("from", f"{CONSENTED}@carrier.example"),
        ("from_user", CONSENTED), ("to", f"{MARKETING_PORT}@gate.example"), ("to_user", MARKETING_PORT),
        ("Event-UUID", "0b6c-reply-1")]), "STOP")


async def revokes(lab: Lab) -> list[object]:
    return [e async for e in lab.ledger.history("acme", int(CONSENTED[1:])) if e.action.value == "revoke"]


async def drain(retries: OptOutRetries) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(retries.run(stop))
    try:
        async with asyncio.timeout(10):
            await retries.drained.wait()
    finally:
        stop.set()
        await running


async def test_a_spooled_stop_is_recorded_after_a_restart_with_the_time_it_came(lab: Lab, tmp_path: Path) -> None:
    lab.service.ledger_deadline = 30.0
    locked = sqlite3.connect(lab.ledger.path, isolation_level=None)  # the ledger cannot be written
    locked.execute("BEGIN IMMEDIATE")
    replied_at = lab.clock.now
    try:
        spool = OptOutSpool.open(tmp_path)
        door = ChatplanDoor(lab.service, tenant="acme", retries=OptOutRetries(lab.service, spool=spool))
        outcome, deliveries = await door.decide(stop_reply())
        assert outcome is None
        assert [d.body for d in deliveries] == ["STOP"]
        assert door.retries.pending == 1
        spool.close()  # the gate stops (or dies) before the ledger is back: nothing ran the retries
    finally:
        locked.rollback()
        locked.close()
    assert await revokes(lab) == []
    lab.clock.advance(timedelta(hours=2))

    reopened = OptOutSpool.open(tmp_path)  # the next start
    retries = OptOutRetries(lab.service, spool=reopened, backoff=FAST)
    assert retries.pending == 1
    await drain(retries)
    [revoke] = await revokes(lab)
    assert revoke.evidence.captured_at == replied_at  # type: ignore[attr-defined]
    assert (tmp_path / FILE_NAME).stat().st_size == 0  # nothing pending: the file is emptied
    outcome = await lab.send(MARKETING_PORT, CONSENTED, "Loans at 3.1%")
    assert outcome.check is not None
    assert outcome.check.decision.reason.value == "consent_revoked"
    reopened.close()
    assert OptOutSpool.open(tmp_path).pending == []  # a third start replays nothing


def reply(n: int) -> Message:
    return Message(sender=CONSENTED, recipient=MARKETING_PORT, body="STOP", door="sip-message", tenant="acme",
                   message_id=f"reply-{n}")


async def test_a_reply_marked_done_is_not_replayed_and_the_rest_are_in_order(tmp_path: Path) -> None:
    spool = OptOutSpool.open(tmp_path)
    for n in range(3):
        assert spool.append(f"k{n}", reply(n))
    spool.done("k1")  # recorded; the gate dies before k0 and k2
    spool.close()
    again = OptOutSpool.open(tmp_path)
    assert [(key, m.message_id) for key, m in again.pending] == [("k0", "reply-0"), ("k2", "reply-2")]


async def test_the_spool_is_bounded_in_bytes_and_a_reply_past_it_is_still_retried_from_memory(
        lab: Lab, tmp_path: Path) -> None:
    """A full spool loses no opt-out while the queue has room: the reply is retried from memory
    (counted ``not_durable``; before, it was dropped and the withdrawal never recorded)."""
    spool = OptOutSpool.open(tmp_path, max_bytes=400)
    retries = OptOutRetries(lab.service, spool=spool)
    kept = [retries.keep(reply(n)) for n in range(6)]
    assert all(kept)
    assert retries.lost == 0
    assert retries.pending == 6
    on_disk = (tmp_path / FILE_NAME).read_bytes().count(b"\n")  # one line per reply kept on disk
    assert 0 < on_disk < 6
    assert retries.not_durable == 6 - on_disk
    assert (tmp_path / FILE_NAME).stat().st_size <= 400
    bounded = OptOutRetries(lab.service, max_pending=1)
    assert bounded.keep(reply(0))
    assert not bounded.keep(reply(1))
    assert bounded.lost == 1


async def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = OptOutSpool.open(tmp_path)
    assert spool.append("k0", reply(0))
    spool.close()
    with (tmp_path / FILE_NAME).open("ab") as file:
        file.write(b'{"key":"k1","mess')  # killed mid-write
    assert [key for key, _ in OptOutSpool.open(tmp_path).pending] == ["k0"]


def test_serve_keeps_the_opt_outs_in_the_audit_spools_directory(tmp_path: Path) -> None:
    config = Settings(tenants={}, store=StoreSettings(path=tmp_path / "gate.sqlite3"))
    assert config.audit_spool is not None
    config.audit_spool.directory.mkdir()  # serve's open_app made and locked it
    spool = _opt_out_spool(config)
    assert spool is not None
    assert spool.path == tmp_path / "gate.sqlite3.audit-spool" / FILE_NAME
    spool.close()
    missing = Settings(tenants={}, store=StoreSettings(path=tmp_path / "none" / "gate.sqlite3"))
    assert _opt_out_spool(missing) is None  # logged: kept in memory, not a crash of the chatplan


async def test_recorded_replies_are_compacted_away_so_a_steady_trickle_never_fills_the_spool(tmp_path: Path) -> None:
    spool = OptOutSpool.open(tmp_path, max_bytes=1000)
    assert spool.append("first", reply(0))  # stays pending throughout: the file is never emptied
    for n in range(1, 40):  # ~150 bytes a reply, plus a done mark: 40 of them are far past 1000 bytes
        assert spool.append(f"k{n}", reply(n))
        spool.done(f"k{n}")
        assert spool.size <= 1000
    spool.close()
    assert [key for key, _ in OptOutSpool.open(tmp_path).pending] == ["first"]
    assert not (tmp_path / (FILE_NAME + ".tmp")).exists()
