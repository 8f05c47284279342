"""The carrier-to-reseller feed: a carrier's dncgate republishes what it applied; resellers sync from it.

``FeedPublisher`` is the sync engine's publisher: after each snapshot or delta it writes a
normalised file (``+E.164`` a line, gzip; deltas as gzip CSV ``number,action``) into the feed
directory and replaces ``manifest.json`` (and ``manifest.json.sig`` when the carrier signs) in
one rename. ``FeedServer`` serves that directory over HTTP(S) to authenticated resellers (bearer
tokens), with ETag / If-Modified-Since and Range requests, so a reseller's ``HttpSource`` syncs
from it exactly as from the national platform. Resellers may POST registrations, which join the
carrier's upstream queue, and GET ``standings``: the carrier's enforcement standings of the
originators of the tenant named like their token (``enforcement.feed_standings``).
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import json
import ssl
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import structlog
from aiohttp import web

from dncgate.clock import now_iso
from dncgate.config_file import LOOPBACK_HOST
from dncgate.enforcement.feed_standings import StandingsReader
from dncgate.http import serve_app
from dncgate.lists.manifest import FileEntry, ListManifest, ManifestError, file_entry, parse_manifest, sign
from dncgate.settings.schema import FeedSettings
from dncgate.store.errors import StoreError

log = structlog.get_logger("dncgate.lists.feed")
_BOUNDS = FeedSettings()  # the [feed] defaults
MANIFEST = "manifest.json"
_STANDINGS_DEADLINE = 10.0  # the case store's answer for one reseller's standings


class FeedPublisher:
    def __init__(self, directory: Path, list_name: str, *, keep_deltas: int = 90,
                 private_key: bytes | None = None) -> None:
        self.directory, self.list_name = directory, list_name
        self.keep_deltas, self.private_key = keep_deltas, private_key
        directory.mkdir(parents=True, exist_ok=True)
        self.manifest = ListManifest(list_name, now_iso(), None, ())
        current = directory / MANIFEST
        if current.exists():
            try:
                self.manifest = parse_manifest(current.read_bytes(), str(current))
            except ManifestError as exc:
                log.warning("feed.manifest_unreadable", path=str(current), error=str(exc), action="starting afresh")

    async def snapshot(self, sequence: int, numbers: Sequence[int]) -> None:
        entry = await asyncio.to_thread(self._write_snapshot, sequence, numbers)
        await self._publish(replace(self.manifest, snapshot=entry, deltas=()))

    async def delta(self, sequence: int, adds: Sequence[int], removes: Sequence[int]) -> None:
        entry = await asyncio.to_thread(self._write_delta, sequence, adds, removes)
        deltas = (*[d for d in self.manifest.deltas if d.sequence != sequence], entry)[-self.keep_deltas :]
        await self._publish(replace(self.manifest, deltas=deltas))

    def _write_snapshot(self, sequence: int, numbers: Sequence[int]) -> FileEntry:
        path = self.directory / f"snapshot-{sequence}.txt.gz"
        tmp = path.with_name(path.name + ".tmp")
        with gzip.open(tmp, "wt", encoding="ascii", compresslevel=3) as out:
            for start in range(0, len(numbers), 100_000):
                out.write("".join(f"+{n}\n" for n in numbers[start : start + 100_000]))
        tmp.replace(path)
        return file_entry(path, sequence, "lines")

    def _write_delta(self, sequence: int, adds: Sequence[int], removes: Sequence[int]) -> FileEntry:
        path = self.directory / f"delta-{sequence}.csv.gz"
        tmp = path.with_name(path.name + ".tmp")
        with gzip.open(tmp, "wt", encoding="ascii") as out:
            out.write("number,action\n")
            out.write("".join(f"+{n},add\n" for n in adds))
            out.write("".join(f"+{n},remove\n" for n in removes))
        tmp.replace(path)
        return file_entry(path, sequence, "csv")

    async def _publish(self, manifest: ListManifest) -> None:
        manifest = replace(manifest, generated_at=now_iso())
        await asyncio.to_thread(self._write_manifest, manifest)
        old = self.manifest
        self.manifest = manifest
        keep = {e.file for e in (manifest.snapshot, *manifest.deltas) if e is not None}
        for entry in (old.snapshot, *old.deltas):
            if entry is not None and entry.file not in keep:
                (self.directory / entry.file).unlink(missing_ok=True)
        log.info("feed.published", list_name=self.list_name, sequence=manifest.latest_sequence,
                 deltas=len(manifest.deltas))

    def _write_manifest(self, manifest: ListManifest) -> None:
        raw = manifest.to_bytes()
        if self.private_key is not None:
            sig = self.directory / (MANIFEST + ".sig.tmp")
            sig.write_bytes(sign(raw, self.private_key))
        tmp = self.directory / (MANIFEST + ".tmp")
        tmp.write_bytes(raw)
        if self.private_key is not None:
            # The signature goes first: a reader may see the new signature with the old manifest for a
            # moment (and retries at the next sync), never an unsigned manifest.
            (self.directory / (MANIFEST + ".sig.tmp")).replace(self.directory / (MANIFEST + ".sig"))
        tmp.replace(self.directory / MANIFEST)



class FeedServer:
    """Serves a feed directory to resellers holding one of ``tokens`` (reseller name -> token)."""

    def __init__(
        self, directory: Path, tokens: Mapping[str, str], *, host: str = LOOPBACK_HOST, port: int = 0,
        ssl_context: ssl.SSLContext | None = None, max_downloads: int = 16, registrations: object = None,
        bounds: FeedSettings = _BOUNDS, confirmed_age: Callable[[], timedelta | None] | None = None,
        max_age: timedelta | None = None, standings: StandingsReader | None = None,
        standing_tenants: Collection[str] = (),
    ) -> None:
        """``bounds``: its listening socket's (``max_connections``, ``header_timeout``, ``keepalive_timeout``).

        ``confirmed_age`` (the carrier's own list age, ``ListFreshness.age``) and ``max_age``: while the
        carrier's list is older than ``max_age`` (or was never confirmed) the manifest is refused with 503
        ``stale``, so a reseller's age grows with the carrier's instead of being confirmed by a 304 for a
        manifest nobody refreshes (issue 11 item 3, one hop down).

        ``standings`` (the carrier's case store) and ``standing_tenants`` (its tenants): ``standings``
        serves a reseller the enforcement standings of the carrier's tenant named like its token
        (``enforcement.feed_standings``); 404 when there is none, so the reseller keeps what it has."""
        if not tokens:
            raise ValueError("feed: at least one reseller token is needed")
        self.directory, self.tokens = directory, dict(tokens)
        self.host, self.port, self._ssl = host, port, ssl_context
        self._bounds = bounds
        self._slots = asyncio.Semaphore(max_downloads)
        self._registrations = registrations  # an upstream.Outbox, if resellers may push registrations
        self._runner: web.AppRunner | None = None
        self._confirmed_age, self._max_age = confirmed_age, max_age
        self._standings, self._standing_tenants = standings, frozenset(standing_tenants)

    def _reseller(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        found = None
        for name, expected in self.tokens.items():
            if hmac.compare_digest(token.encode(), expected.encode()):
                found = name
        return found

    async def _file(self, request: web.Request) -> web.StreamResponse:
        reseller = self._reseller(request)
        name = request.match_info["name"]
        if reseller is None:
            log.warning("feed.unauthorised", peer=request.remote, file=name)
            return web.json_response({"error": "unauthorised"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        if name not in self._servable():
            return web.json_response({"error": "not found"}, status=404)
        if name in (MANIFEST, MANIFEST + ".sig") and (why := self._stale()):
            log.warning("feed.stale_refused", reseller=reseller, file=name, detail=why)
            return web.json_response({"error": "stale", "detail": why}, status=503, headers={"Retry-After": "300"})
        if self._slots.locked():
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "5"})
        async with self._slots:
            log.info("feed.served", reseller=reseller, file=name, range=request.headers.get("Range"))
            response = web.FileResponse(self.directory / name, chunk_size=1 << 16)
            response.content_type = "application/json" if name == MANIFEST else "application/octet-stream"
            return response

    def _stale(self) -> str:
        """Why the carrier's own list may not be confirmed to a reseller now ("" when it may)."""
        if self._confirmed_age is None or self._max_age is None:
            return ""
        age = self._confirmed_age()
        if age is None:
            return "the carrier's list was never confirmed by its source"
        if age > self._max_age:
            return f"the carrier's list was last confirmed {age.days} days ago (at most {self._max_age.days})"
        return ""

    def _servable(self) -> set[str]:
        names = {MANIFEST, MANIFEST + ".sig"}
        try:
            manifest = parse_manifest((self.directory / MANIFEST).read_bytes(), MANIFEST)
        except (OSError, ManifestError):
            return set()
        names.update(e.file for e in (manifest.snapshot, *manifest.deltas) if e is not None)
        return {n for n in names if (self.directory / n).exists()}

    async def _standings_of(self, request: web.Request) -> web.Response:
        reseller = self._reseller(request)
        if reseller is None:
            return web.json_response({"error": "unauthorised"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        if self._standings is None or reseller not in self._standing_tenants:
            log.warning("feed.standings_no_tenant", reseller=reseller, enforcement=self._standings is not None)
            return web.json_response({"error": f"this feed publishes no standings for {reseller!r} "
                                               "(no tenant of that name)"}, status=404)
        try:
            async with asyncio.timeout(_STANDINGS_DEADLINE):
                found = await self._standings.standings(reseller)
        except (StoreError, TimeoutError) as exc:
            log.error("feed.standings_failed", reseller=reseller, error=str(exc) or "timeout")
            return web.json_response({"error": "standings unavailable"}, status=503, headers={"Retry-After": "60"})
        log.info("feed.standings_served", reseller=reseller, version=found.version, standings=len(found.standings))
        return web.Response(body=found.to_json(now_iso()), content_type="application/json")

    async def _register(self, request: web.Request) -> web.Response:
        from dncgate.lists.upstream import Outbox, RegistrationError

        reseller = self._reseller(request)
        if reseller is None:
            return web.json_response({"error": "unauthorised"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        if not isinstance(self._registrations, Outbox):
            return web.json_response({"error": "this feed takes no registrations"}, status=404)
        key = request.headers.get("Idempotency-Key", "")
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            queued = await self._registrations.enqueue_registration(  # it checks the category
                str(body.get("number", "")), action=str(body.get("action", "add")),
                channel=f"reseller:{reseller}", category=body.get("category"), key=key or None,
            )
        except (ValueError, json.JSONDecodeError, RegistrationError) as exc:
            return web.json_response({"error": str(exc)}, status=422)
        return web.json_response({"key": queued, "status": "queued"}, status=202)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/feed/standings", self._standings_of)
        app.router.add_get("/feed/{name}", self._file)
        app.router.add_post("/feed/registrations", self._register)
        bounds = self._bounds  # resellers reach this port: capped and timed out like [http]
        self._runner, self.port = await serve_app(
            app, self.host, self.port, max_connections=bounds.max_connections, header_timeout=bounds.header_timeout,
            keepalive_timeout=bounds.keepalive_timeout, tls=self._ssl, shutdown_timeout=2.0, label="feed")
        log.info("feed.started", host=self.host, port=self.port, directory=str(self.directory),
                 resellers=sorted(self.tokens), tls=self._ssl is not None)

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://{self.host}:{self.port}/feed/"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            log.info("feed.stopped")
