"""``transport = "redis"`` wired as serve wires it: two gates, each with its early warning started,
a blaster whose calls are split over both (neither gate decides enough of them for the rule), its
alert raised by the analyser that holds its partition and handed to enforcement (a case on the
shared Redis case store); and ``serve`` itself running it on the store's Redis, its last checkpoint
left there for the partition's next holder."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dncgate.analytics import EarlyWarning
from dncgate.audit import AuditSink
from dncgate.enforcement.desk import desk_of
from dncgate.enforcement.model import CaseState
from dncgate.events import CallEventStream
from dncgate.gate import CheckRequest, Gate
from dncgate.metrics import GateMetrics
from dncgate.model import Originator, Reason
from dncgate.settings import load
from dncgate.settings.early_warning import EarlyWarningSettings, StreamSettings
from dncgate.settings.enforcement import EnforcementSettings
from dncgate.store.redis.cases import RedisCaseStore
from dncgate.store.redis.fact_stream import FactStreams
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.early_warning import SqliteEarlyWarningStore
from tests.conftest import TEST_STORE_TIMEOUT_MS, RedisServer, serving
from tests.early_warning.test_settings_store import write
from tests.early_warning.test_wiring import BLASTER, LISTED, LOG, NOON, TENANTS
from tests.enforcement.conftest import Clock
from tests.polls import poll_until


async def test_two_gates_feed_one_view_and_its_alert_opens_the_case(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.flush()
    clock = Clock(NOON)
    store = SqliteListStore(tmp_path / "lists.sqlite3")
    await store.replace_list("national", LISTED)
    audit = AuditSink(store, linger=0.0)
    audit.start()
    cases = RedisCaseStore.connect(redis_server.url)
    gates, watchers, desks = [], [], []
    try:
        for n in (1, 2):
            settings = EarlyWarningSettings(enabled=True, path=tmp_path / f"ew-{n}.sqlite3",
                                            checkpoint_interval=1.0, transport="redis",  # the checkpoint evaluates
                                            stream=StreamSettings(partitions=4, lease=600.0))
            watching = await EarlyWarning.open(settings, TENANTS, redis_url=redis_server.url, default_tenant="acme",
                                               clock=clock, name=f"gate-{n}")
            watchers.append(watching)
            gate = Gate(TENANTS, store, audit, clock=clock)
            desk = desk_of(EnforcementSettings(enabled=True, notice_period=3600.0), TENANTS, cases, store,
                           clock=clock, alerts=watching.store)
            watching.start(gate, CallEventStream().subscribe(), desk)
            gates.append(gate)
            desks.append(desk)
        refusals = []
        for i in range(10):  # alternately through each gate: 5 calls each, 6 needed for the refused rule
            clock.advance(seconds=3)
            number = 8613900000000 + (2 * i if i % 3 != 2 else 2 * i + 1)  # even offsets are listed
            result = await gates[i % 2].check(CheckRequest(f"+{number}", "test", tenant="acme", purpose="marketing",
                                                           originator=Originator(account="blaster",
                                                                                 caller_id="+86105bla")), LOG)
            refusals.append(result.decision.reason is Reason.NATIONAL_DNC)
            await asyncio.sleep(0)
        assert sum(refusals) == 7
        await poll_until(lambda: sum(w.delivered for w in watchers) >= 1, "the alert delivered")
        holder = next(w for w in watchers if w.delivered)
        assert holder.shared is not None
        assert holder.shared.consumer.applied == 10  # both gates' calls, in one view
        metrics = GateMetrics()
        metrics.watch_facts(holder.shared.producer, holder.shared.consumer)
        scraped = metrics.render().decode()
        assert "dncgate_early_warning_facts_applied_total 10.0" in scraped
        assert "dncgate_early_warning_facts_dropped_total 0.0" in scraped
        booked = [a for a, _ in await holder.store.alerts("acme")]
        assert {(a.originator, a.rule) for a in booked} == {(BLASTER, "refused")}
        assert booked[0].figures["attempts_1h"] >= 6
        case = await cases.open_case(BLASTER)
        assert case is not None
        assert case.state is CaseState.NOTICED
    finally:
        for watching in watchers:
            await watching.close(5.0)
        for desk in desks:
            await desk.cases.drain()
        await cases.close()
        await audit.close()
        await store.close()


async def test_serve_runs_the_shared_early_warning_on_the_store_redis(tmp_path: Path,
                                                                        redis_server: RedisServer) -> None:
    redis_server.flush()
    path = write(tmp_path, f"""
[audit]
spool_dir = "{tmp_path / 'spool'}"
[store]
backend = "redis"
url = "{redis_server.url}"
timeout_ms = {TEST_STORE_TIMEOUT_MS}
[agi]
enabled = false
[esl]
enabled = false
[http]
enabled = false
[tenants.acme]
region = "CN"
[early_warning]
enabled = true
transport = "redis"
path = "{tmp_path / 'ew.sqlite3'}"
checkpoint_interval_s = 1
[early_warning.stream]
partitions = 2
""")
    # On a clock at noon: at the wall's night the blaster's calls are a night burst as well.
    async with serving(load(path, environ={}), lists={"national": LISTED}, clock=Clock(NOON)) as running:
        watching = running.early_warning
        assert watching is not None
        assert watching.shared is not None
        for i in range(8):
            await running.gate.check(CheckRequest(f"+{8613900000000 + 2 * i}", "test", tenant="acme",
                                                  purpose="marketing", originator=Originator(account="blaster")), LOG)
        await poll_until(lambda: watching.delivered >= 1, "the alert booked")
    book = SqliteEarlyWarningStore(tmp_path / "ew.sqlite3")
    streams = FactStreams.connect(redis_server.url, partitions=2, maxlen=100)
    try:
        assert {a.rule for a, _ in await book.alerts("acme")} == {"refused"}
        saved = [name for p in range(2) async for name, _, _ in streams.states(p)]
        assert saved == [b"acme\x1fblaster"]  # the checkpoint the partition's next holder starts from
    finally:
        await book.close()
        await streams.close()
