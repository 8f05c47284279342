"""HTTP sync: a carrier dncgate republishes the national list, a reseller syncs from it on loopback;
ETag, Range resume, bearer tokens and client certificates."""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from dncgate.lists.feed import FeedPublisher, FeedServer
from dncgate.lists.manifest import file_entry
from dncgate.lists.sources import DropDirSource, Fetched, HttpSettings, HttpSource, SourceError
from dncgate.lists.sync import Syncer, SyncError, SyncJob
from dncgate.store.protocol import ListStore
from dncgate.store.sqlite import SqliteListStore
from tests.lists.sync_helpers import numbers, write_delta, write_manifest, write_snapshot
from tests.lists.tls_helpers import make_pki


async def _listed(store: ListStore, items: list[int]) -> list[bool]:
    return [(await store.facts("t", n)).national is not None for n in items]


async def test_reseller_syncs_from_the_carrier_exactly_as_from_the_national_platform(
    any_store: ListStore, tmp_path: Path
) -> None:
    """Carrier: national drop directory -> its store (either backend) + feed; reseller: SQLite via HTTP."""
    drop, feed_dir = tmp_path / "national-drop", tmp_path / "feed"
    drop.mkdir()
    carrier = Syncer(any_store, DropDirSource(drop), SyncJob(workdir=tmp_path / "cw"),
                     publisher=FeedPublisher(feed_dir, "national"))
    write_manifest(drop, write_snapshot(drop, 40, numbers(0, 300)),
                   [write_delta(drop, 41, adds=numbers(300, 3), removes=numbers(0, 1))], name="1.manifest.json")
    await carrier.sync_once()
    server = FeedServer(feed_dir, {"reseller-a": "token-a", "reseller-b": "token-b"})
    await server.start()
    reseller_store = SqliteListStore(tmp_path / "reseller.sqlite3")
    source = HttpSource(HttpSettings(server.url, auth_header="Authorization: Bearer token-b"))
    reseller = Syncer(reseller_store, source, SyncJob(workdir=tmp_path / "rw"))
    try:
        first = await reseller.sync_once()
        assert (first.snapshot, first.deltas, first.sequence) == (40, [41], 41)
        probe = numbers(0, 2) + numbers(300, 3)
        expected = [False, True, True, True, True]
        assert await _listed(reseller_store, probe) == await _listed(any_store, probe) == expected
        state = await reseller_store.sync_state("national")
        assert state["etag"]
        first_etag = state["etag"]
        # Unchanged feed: a conditional GET answered 304, the list is confirmed fresh, nothing re-applied.
        await reseller_store.set_sync_state("national", {**state, "fresh_at": "2020-01-01T00:00:00+00:00"})
        assert (await reseller.sync_once()).outcome == "unchanged"
        # ...and that positive confirmation is what refreshes the list's age (issue 11 item 3)
        assert (await reseller_store.sync_state("national"))["fresh_at"] > "2026"
        # An HTTP 200 (asked without validators) for the same manifest at sequence 41 confirms
        # nothing: the age stays; its ETag is kept, so the next 304 is a confirmation again.
        state = await reseller_store.sync_state("national")
        stale = {k: v for k, v in state.items() if k not in ("etag", "last_modified")}
        await reseller_store.set_sync_state("national", {**stale, "fresh_at": "2020-01-01T00:00:00+00:00"})
        same = await reseller.sync_once()
        assert (same.outcome, same.snapshot, same.deltas, same.sequence) == ("nothing_new", None, [], 41)
        state = await reseller_store.sync_state("national")
        assert (state["fresh_at"], state["etag"]) == ("2020-01-01T00:00:00+00:00", first_etag)
        assert (await reseller.sync_once()).outcome == "unchanged"
        assert (await reseller_store.sync_state("national"))["fresh_at"] > "2026"
        # The carrier applies delta 42; the reseller picks up just that delta.
        write_manifest(drop, None, [write_delta(drop, 42, adds=numbers(900, 1), removes=numbers(1, 1))],
                       name="2.manifest.json")
        assert (await carrier.sync_once()).deltas == [42]
        second = await reseller.sync_once()
        assert (second.snapshot, second.deltas, second.sequence) == (None, [42], 42)
        assert await _listed(reseller_store, numbers(900, 1) + numbers(1, 1)) == [True, False]
        # A wrong token is refused with a clear error, never a traceback.
        intruder = Syncer(SqliteListStore(tmp_path / "x.sqlite3"), HttpSource(HttpSettings(
            server.url, auth_header="Authorization: Bearer nope")), SyncJob(workdir=tmp_path / "xw"))
        with pytest.raises(SyncError, match="not authorised") as caught:
            await intruder.sync_once()
        assert caught.value.cause == "source"
        await intruder.source.close()
        await intruder.store.close()
    finally:
        await source.close()
        await server.close()
        await reseller_store.close()


async def test_interrupted_download_resumes_with_a_range_request(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    entry = write_snapshot(served, 7, numbers(0, 20000), gz=False)
    write_manifest(served, entry, [])
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Range"))
        return web.FileResponse(served / request.match_info["name"])

    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    workdir = tmp_path / "work"
    workdir.mkdir()
    # The first attempt died half-way: half the file is on disk.
    data = (served / entry.file).read_bytes()
    (workdir / f"{entry.sha256[:16]}-{entry.file}.part").write_bytes(data[: len(data) // 2])
    source = HttpSource(HttpSettings(f"http://127.0.0.1:{port}/"))
    store = SqliteListStore(tmp_path / "s.sqlite3")
    try:
        report = await Syncer(store, source, SyncJob(workdir=workdir)).sync_once()
        assert report.loaded == 20000
        assert f"bytes={len(data) // 2}-" in seen
        assert (workdir / f"{entry.sha256[:16]}-{entry.file}").read_bytes() == data
        # A partial file that is not a prefix of the real one fails the digest and is discarded.
        entry2 = write_snapshot(served, 8, numbers(0, 20001), gz=False)
        write_manifest(served, entry2, [])
        (workdir / f"{entry2.sha256[:16]}-{entry2.file}.part").write_bytes(b"garbage" * 100)
        with pytest.raises(SyncError) as caught:
            await Syncer(store, source, SyncJob(workdir=workdir)).sync_once()
        assert caught.value.cause == "integrity"
        assert not (workdir / f"{entry2.sha256[:16]}-{entry2.file}.part").exists()
        assert (await Syncer(store, source, SyncJob(workdir=workdir)).sync_once()).snapshot == 8
    finally:
        await source.close()
        await store.close()
        await runner.cleanup()


async def test_client_certificate_over_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    feed_dir = tmp_path / "feed"
    publisher = FeedPublisher(feed_dir, "national")
    await publisher.snapshot(3, numbers(0, 50))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    server = FeedServer(feed_dir, {"r": "t"}, ssl_context=context)
    await server.start()
    store = SqliteListStore(tmp_path / "s.sqlite3")
    with_cert = HttpSource(HttpSettings(server.url, auth_header="Authorization: Bearer t", ca_file=pki.ca,
                                       client_cert=pki.client_cert, client_key=pki.client_key))
    without = HttpSource(HttpSettings(server.url, auth_header="Authorization: Bearer t", ca_file=pki.ca))
    try:
        with pytest.raises(SourceError):
            await without.manifest({})
        report = await Syncer(store, with_cert, SyncJob(workdir=tmp_path / "w")).sync_once()
        assert (report.snapshot, report.loaded) == (3, 50)
    finally:
        await with_cert.close()
        await without.close()
        await server.close()
        await store.close()


async def test_feed_serves_only_what_its_manifest_names(tmp_path: Path) -> None:
    feed_dir = tmp_path / "feed"
    publisher = FeedPublisher(feed_dir, "national", keep_deltas=2)
    await publisher.snapshot(1, numbers(0, 5))
    for seq in (2, 3, 4):
        await publisher.delta(seq, numbers(10 + seq, 1), [])
    assert [d.sequence for d in publisher.manifest.deltas] == [3, 4]
    assert not (feed_dir / "delta-2.csv.gz").exists()  # trimmed from the manifest, then deleted
    (feed_dir / "secret.txt").write_text("not for resellers")
    assert file_entry(feed_dir / "secret.txt", 0).size > 0
    server = FeedServer(feed_dir, {"r": "t"})
    await server.start()
    source = HttpSource(HttpSettings(server.url, auth_header="Authorization: Bearer t"))
    try:
        fetched = await source.manifest({})
        assert isinstance(fetched, Fetched)
        assert fetched.manifest.latest_sequence == 4
        async with source._client().get(server.url + "secret.txt") as response:
            assert response.status == 404
    finally:
        await source.close()
        await server.close()


async def test_a_stale_carrier_does_not_confirm_its_feed_to_resellers(tmp_path: Path) -> None:
    """The carrier's own list is older than its limit: the manifest is refused (503 stale), so the
    reseller's sync fails and its list's age keeps growing; once the carrier is fresh again, a 304
    confirms the reseller's list again (issue 11 item 3, one hop down)."""
    drop, feed_dir = tmp_path / "national-drop", tmp_path / "feed"
    drop.mkdir()
    carrier_store = SqliteListStore(tmp_path / "carrier.sqlite3")
    carrier = Syncer(carrier_store, DropDirSource(drop), SyncJob(workdir=tmp_path / "cw"),
                     publisher=FeedPublisher(feed_dir, "national"))
    write_manifest(drop, write_snapshot(drop, 7, numbers(0, 50)), [], name="1.manifest.json")
    await carrier.sync_once()
    carrier_age: list[timedelta | None] = [timedelta(days=1)]
    server = FeedServer(feed_dir, {"r": "t"}, confirmed_age=lambda: carrier_age[0], max_age=timedelta(days=31))
    await server.start()
    reseller_store = SqliteListStore(tmp_path / "reseller.sqlite3")
    reseller = Syncer(reseller_store, HttpSource(HttpSettings(server.url, auth_header="Authorization: Bearer t")),
                      SyncJob(workdir=tmp_path / "rw"))
    old = "2020-01-01T00:00:00+00:00"
    try:
        assert (await reseller.sync_once()).sequence == 7
        state = await reseller_store.sync_state("national")
        await reseller_store.set_sync_state("national", {**state, "fresh_at": old})
        for age in (timedelta(days=40), None):  # stale, then never confirmed: refused either way
            carrier_age[0] = age
            with pytest.raises(SyncError, match="HTTP 503") as caught:  # the feed answers 503 stale
                await reseller.sync_once()
            assert caught.value.cause == "source"
            assert (await reseller_store.sync_state("national"))["fresh_at"] == old
        carrier_age[0] = timedelta(hours=2)
        assert (await reseller.sync_once()).outcome == "unchanged"
        assert (await reseller_store.sync_state("national"))["fresh_at"] > "2026"
    finally:
        await reseller.source.close()
        await server.close()
        await reseller_store.close()
        await carrier_store.close()
