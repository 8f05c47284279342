"""Where list updates come from, behind one interface: an HTTPS server (the national platform, or
a carrier's dncgate feed for its resellers) or a drop directory.

A source hands the sync engine a manifest (``None``: nothing new), downloads the files it names
and is told how the attempt ended. The same adapter pushes local registrations upstream.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
import structlog

from dncgate.clock import now_iso
from dncgate.errors import ListError
from dncgate.lists.manifest import MAX_MANIFEST_BYTES, FileEntry, ListManifest, parse_manifest, verify_file

log = structlog.get_logger("dncgate.lists.sources")
_CHUNK = 1 << 16


class SourceError(ListError):
    """The source could not be reached or answered nonsense (retried at the next sync)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    manifest: ListManifest
    raw: bytes  # the manifest's exact bytes, for the signature
    signature: bytes | None
    validators: dict[str, str] = field(default_factory=dict)  # etag / last_modified for the next ask
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Registration:
    """A number registered (or withdrawn) locally, to be pushed to the national platform."""

    key: str  # idempotency key: the same key pushed twice is one registration
    number: str  # E.164 with '+'
    action: str  # add or remove
    channel: str  # ivr, api, ...
    at: str
    category: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"key": self.key, "number": self.number, "action": self.action, "channel": self.channel,
                "at": self.at, "category": self.category}


@dataclass(frozen=True, slots=True)
class PushResult:
    key: str
    accepted: bool
    permanent: bool = False  # refused for good (bad number): do not retry
    detail: str = ""


class Unchanged:
    """The source confirmed that the manifest the list was synced from is still current.

    Only a positive confirmation refreshes the list's age: an HTTP 304 for the validators of the
    sequence the list holds. A source with nothing to offer (an empty drop directory) returns
    ``None``, which says nothing about the list's freshness: the job that fills it may have died.
    """

    __slots__ = ()


UNCHANGED = Unchanged()


class SyncSource(Protocol):
    name: str

    async def manifest(self, validators: Mapping[str, str]) -> Fetched | Unchanged | None: ...

    async def fetch(self, entry: FileEntry, workdir: Path) -> Path:
        """The file, verified against ``entry``. Raises ``SourceError`` or ``IntegrityError``."""
        ...

    async def finished(self, fetched: Fetched, outcome: str) -> None:
        """``applied``, ``rejected`` (integrity, signature, shrink) or ``retry``."""
        ...

    async def push(self, registrations: Sequence[Registration]) -> list[PushResult]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class HttpSettings:
    url: str  # the directory holding manifest.json, ending in '/'
    auth_header: str = ""  # "Authorization: Bearer ..." (any "Name: value")
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_file: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # between two reads of one response
    download_deadline: float = 3600.0  # one whole file
    manifest_deadline: float = 30.0
    push_deadline: float = 30.0


def ssl_context(settings: HttpSettings) -> ssl.SSLContext | None:
    if not settings.url.startswith("https:"):
        return None
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.client_cert is not None:
        context.load_cert_chain(settings.client_cert, settings.client_key)
    return context


class HttpSource:
    """Pull over HTTP(S): conditional manifest GET (ETag / If-Modified-Since), resumable file downloads."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.name = settings.url
        self.base = settings.url if settings.url.endswith("/") else settings.url + "/"
        self._headers: dict[str, str] = {}
        if settings.auth_header:
            header, _, value = settings.auth_header.partition(":")
            if not header.strip() or not value.strip():
                raise ValueError("auth_header: expected 'Name: value'")
            self._headers[header.strip()] = value.strip()
        self._ssl = ssl_context(settings)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout,
                                            sock_read=self.settings.read_timeout)
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True, limit=4)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector, headers=self._headers,
                                                  auto_decompress=False)
        return self._session

    async def manifest(self, validators: Mapping[str, str]) -> Fetched | Unchanged | None:
        headers = {}
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        url = self.base + "manifest.json"
        try:
            async with asyncio.timeout(self.settings.manifest_deadline):
                async with self._client().get(url, headers=headers) as response:
                    if response.status == 304:
                        # a confirmation only when we asked about the manifest we hold
                        return UNCHANGED if headers else None
                    _check_status(response, url)
                    raw = await _read_limited(response, MAX_MANIFEST_BYTES, url)
                    found = {k: v for k, v in (("etag", response.headers.get("ETag", "")),
                                               ("last_modified", response.headers.get("Last-Modified", ""))) if v}
                async with self._client().get(url + ".sig") as response:
                    signature = None
                    if response.status != 404:
                        _check_status(response, url + ".sig")
                        signature = await _read_limited(response, 4096, url + ".sig")
        except TimeoutError:
            raise SourceError(f"{url}: no answer within {self.settings.manifest_deadline} s") from None
        except aiohttp.ClientError as exc:
            raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from None
        return Fetched(parse_manifest(raw, url), raw, signature, found, url)

    async def document(self, name: str, limit: int) -> bytes | None:
        """The small file ``name`` beside the manifest (at most ``limit`` bytes); None when the source
        has none (HTTP 404). Raises ``SourceError``."""
        url = self.base + name
        try:
            async with asyncio.timeout(self.settings.manifest_deadline):
                async with self._client().get(url, headers={"Accept-Encoding": "identity"}) as response:
                    if response.status == 404:
                        return None
                    _check_status(response, url)
                    return await _read_limited(response, limit, url)
        except TimeoutError:
            raise SourceError(f"{url}: no answer within {self.settings.manifest_deadline} s") from None
        except aiohttp.ClientError as exc:
            raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from None

    async def fetch(self, entry: FileEntry, workdir: Path) -> Path:
        """Download into ``workdir``, resuming a partial download of the same digest with a Range request."""
        final = workdir / f"{entry.sha256[:16]}-{entry.file}"
        part = final.with_name(final.name + ".part")
        have = await asyncio.to_thread(_prepare, workdir, final, part)
        if have < 0:
            await asyncio.to_thread(verify_file, final, entry)
            return final
        url = self.base + entry.file
        try:
            async with asyncio.timeout(self.settings.download_deadline):
                headers = {"Range": f"bytes={have}-", "Accept-Encoding": "identity"} if have else {
                    "Accept-Encoding": "identity"}
                async with self._client().get(url, headers=headers) as response:
                    if response.status == 416 or (have and response.status == 200):
                        have = 0  # the server will not resume: start over
                    if response.status not in (200, 206, 416):
                        _check_status(response, url)
                    if response.status != 416:
                        log.info("sync.download_started", url=url, resume_from=have, size=entry.size)
                        written = have
                        with part.open("ab" if have else "wb") as out:
                            async for chunk in response.content.iter_chunked(_CHUNK):
                                out.write(chunk)
                                written += len(chunk)
                                if written > entry.size:
                                    break  # more than the manifest says: the digest check refuses it
        except TimeoutError:
            raise SourceError(f"{url}: download not finished within {self.settings.download_deadline} s") from None
        except aiohttp.ClientError as exc:
            raise SourceError(f"{url}: {type(exc).__name__}: {exc} (the next sync resumes)") from None
        await asyncio.to_thread(_complete, part, final, entry, url)
        return final

    async def finished(self, fetched: Fetched, outcome: str) -> None:
        return None

    async def push(self, registrations: Sequence[Registration]) -> list[PushResult]:
        """POST each registration with its idempotency key; 2xx accepted, 4xx refused for good."""
        results = []
        url = self.base + "registrations"
        for reg in registrations:
            try:
                async with asyncio.timeout(self.settings.push_deadline):
                    async with self._client().post(url, json=reg.as_dict(),
                                                   headers={"Idempotency-Key": reg.key}) as response:
                        body = (await response.content.read(2048)).decode("utf-8", "replace")
                        if 200 <= response.status < 300:
                            results.append(PushResult(reg.key, True, detail=f"http {response.status}"))
                        elif 400 <= response.status < 500 and response.status not in (408, 429):
                            results.append(PushResult(reg.key, False, True, f"http {response.status}: {body[:200]}"))
                        else:
                            results.append(PushResult(reg.key, False, False, f"http {response.status}"))
            except TimeoutError:
                results.append(PushResult(reg.key, False, False, f"no answer within {self.settings.push_deadline} s"))
            except aiohttp.ClientError as exc:
                results.append(PushResult(reg.key, False, False, f"{type(exc).__name__}: {exc}"))
        return results

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _prepare(workdir: Path, final: Path, part: Path) -> int:
    """-1 when the file is already downloaded, else how many bytes of it are (to resume from)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if final.exists():
        return -1
    return part.stat().st_size if part.exists() else 0


def _complete(part: Path, final: Path, entry: FileEntry, url: str) -> None:
    size = part.stat().st_size
    if size < entry.size:
        raise SourceError(f"{url}: {size} of {entry.size} bytes (the next sync resumes)")
    try:
        verify_file(part, entry)
    except Exception:
        part.unlink(missing_ok=True)  # a bad download is not resumed
        raise
    part.replace(final)


def _check_status(response: aiohttp.ClientResponse, url: str) -> None:
    if response.status in (401, 403):
        raise SourceError(f"{url}: HTTP {response.status}: not authorised (check auth_header / client_cert)")
    if not 200 <= response.status < 300:
        raise SourceError(f"{url}: HTTP {response.status} {response.reason or ''}".rstrip())


async def _read_limited(response: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    data = await response.content.read(limit + 1)
    if len(data) > limit:
        raise SourceError(f"{url}: larger than {limit} bytes")
    return data


class DropDirSource:
    """A directory operators (or a fetch script) drop ``*.manifest.json`` and their files into.

    The oldest manifest (by name) is processed; then it and its files move to ``processed/``
    (applied) or ``rejected/`` (failed a check), so each drop is processed once. Registrations
    are written as CSV files to ``outgoing/``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = str(directory)

    def _pending(self) -> list[Path]:
        return sorted(self.directory.glob("*.manifest.json"))

    async def manifest(self, validators: Mapping[str, str]) -> Fetched | None:
        pending = self._pending()
        if not pending:
            return None
        path = pending[0]
        try:
            raw = path.read_bytes()
            sig_path = path.with_name(path.name + ".sig")
            signature = sig_path.read_bytes() if sig_path.exists() else None
        except OSError as exc:
            raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from None
        return Fetched(parse_manifest(raw, str(path)), raw, signature, {}, str(path))

    async def fetch(self, entry: FileEntry, workdir: Path) -> Path:
        path = self.directory / entry.file
        if not path.exists():
            raise SourceError(f"{path}: named by the manifest but not in the drop directory")
        await asyncio.to_thread(verify_file, path, entry)
        return path

    async def finished(self, fetched: Fetched, outcome: str) -> None:
        if outcome == "retry":
            return
        target = self.directory / ("processed" if outcome == "applied" else "rejected")
        target.mkdir(exist_ok=True)
        manifest_path = Path(fetched.origin)
        names = [e.file for e in (*fetched.manifest.deltas, fetched.manifest.snapshot) if e is not None]
        for name in [*names, manifest_path.name + ".sig", manifest_path.name]:
            source = self.directory / name
            if source.exists():
                shutil.move(source, target / name)
        log.info("sync.drop_moved", manifest=manifest_path.name, to=str(target), files=len(names))

    async def push(self, registrations: Sequence[Registration]) -> list[PushResult]:
        outgoing = self.directory / "outgoing"
        outgoing.mkdir(exist_ok=True)
        stamp = now_iso().replace(":", "")
        path = outgoing / f"registrations-{stamp}-{registrations[0].key[:8] if registrations else 'none'}.jsonl"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r.as_dict()) + "\n" for r in registrations), encoding="utf-8")
        tmp.replace(path)
        return [PushResult(r.key, True, detail=f"written to {path.name}") for r in registrations]

    async def close(self) -> None:
        return None
