"""The real gate as a separate process for the end-to-end tests: ``dncgate --config FILE serve``.

``GateProcess`` writes a TOML configuration (Redis store, FastAGI and HTTP on free 127.0.0.1
ports, the e2e tenants), starts ``.venv/bin/dncgate serve``, waits for ``/healthz`` and stops it
with SIGTERM. Lists are loaded through the store API (``load_lists``); the durable audit is read
with ``dncgate audit tail``. Helpers for the Asterisk side: ``decision_of`` (the decision the
dialplan logged for a call) and ``invite_timings`` (INVITE -> first response timings from a
SIPp message log).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import TEST_STORE_TIMEOUT_MS
from tests.e2e.lab import LOOPBACK, AsteriskLab, LabError, free_tcp_port

BIN_DIR = Path(sys.executable).parent
DNCGATE = BIN_DIR / "dncgate"

# Numbers of the e2e tests (US, valid for phonenumbers; the lab's callee SIPp accepts any).
LISTED = "+12015550123"  # on the national list
TENANT_LISTED = "+12015550177"  # on tenant acme's own list only
CLEAR = "+12015550124"  # on no list
STANDARD_LISTS = {"national": [int(LISTED[1:])], "tenant:acme": [int(TENANT_LISTED[1:])]}

E2E_TENANTS = """\
[tenants.acme]
region = "US"
international_prefixes = ["00"]  # besides NANPA's own 011: the lab dials 00+E.164 too
reject_sip_code = 607
check_failed_sip_code = 603
marketing_on_failure = "reject"
service_on_failure = "allow"
technical_prefixes = ["9"]

[tenants.acme.hours]
enabled = false  # calling hours are on by default: the tests must not depend on the hour CI runs at

[tenants.strict]
region = "US"
reject_sip_code = 603

[tenants.strict.hours]
enabled = false

[tenants.pilot]
region = "US"
mode = "monitor"
reject_sip_code = 607

[tenants.pilot.hours]
enabled = false
"""


# The store deadline of an e2e gate: the 250 ms production default is not what most calls here are
# about, and a busy machine missed it (check_failed where a decision was expected). The Redis-stall
# test, whose point is that deadline, sets 250 itself.
STORE_TIMEOUT_MS = TEST_STORE_TIMEOUT_MS


def gate_config(redis_url: str, *, agi_port: int, http_port: int, timeout_ms: int = STORE_TIMEOUT_MS,
                tenants: str = E2E_TENANTS, spool_dir: Path | None = None) -> str:
    # Each gate process its own audit spool (the default is relative to the working directory,
    # shared by every gate the suite starts: a second one would find it locked).
    spool = f'[audit]\nspool_dir = "{spool_dir}"\n\n' if spool_dir is not None else ""
    return spool + f"""\
[store]
backend = "redis"
url = "{redis_url}"
timeout_ms = {timeout_ms}

[national]
region = "US"

[agi]
host = "{LOOPBACK}"
port = {agi_port}

[esl]
enabled = false

[http]
host = "{LOOPBACK}"
port = {http_port}

{tenants}"""


async def _load(redis_url: str, lists: Mapping[str, Iterable[int]]) -> None:
    from dncgate.store.redis import RedisListStore, RedisSettings

    settings = RedisSettings(url=redis_url, socket_timeout=5.0, connect_timeout=5.0, retire_grace=0.05)
    store = await RedisListStore.connect(settings)
    try:
        for name, numbers in lists.items():
            await store.replace_list(name, numbers)
        await store.drain_cleanup()
    finally:
        await store.close()


def load_lists(redis_url: str, lists: Mapping[str, Iterable[int]]) -> None:
    """Replace each named list ("national", "tenant:acme") with ``numbers`` (E.164 as integers).

    The old version is freed at once (no call is in flight while a test loads its lists).
    """
    asyncio.run(_load(redis_url, lists))


def e164_int(number: str) -> int:
    return int(number.lstrip("+"))


@dataclass
class GateProcess:
    workdir: Path
    redis_url: str
    timeout_ms: int = STORE_TIMEOUT_MS
    tenants: str = E2E_TENANTS
    process: subprocess.Popen[bytes] | None = None
    config_text: str | None = None  # a whole configuration of its own (else gate_config's, on the free ports)
    open_files: int | None = None  # RLIMIT_NOFILE (soft and hard) of the serve process, like `ulimit -n`

    def __post_init__(self) -> None:
        self.agi_port = free_tcp_port()
        self.http_port = free_tcp_port()
        self.config_path = self.workdir / "dncgate.toml"
        self.log_path = self.workdir / "dncgate.log"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text or gate_config(
            self.redis_url, agi_port=self.agi_port, http_port=self.http_port, timeout_ms=self.timeout_ms,
            tenants=self.tenants, spool_dir=self.workdir / "audit-spool",
        ))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGATE_")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(DNCGATE), "--config", str(self.config_path), "serve"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                cwd=self.workdir,  # its own working directory: a relative [audit] spool_dir is not shared
                preexec_fn=None if self.open_files is None else self._limit_open_files,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LabError(f"dncgate serve exited with {self.process.returncode}:\n{self.log_tail()}")
            status, body = self.healthz()
            # up: the store answers (a list a tenant needs may be loaded after start: 503 "lists missing")
            if status == 200 or (status == 503 and body.get("store") == "ok"):
                return
            time.sleep(0.1)
        self.stop()
        raise LabError(f"dncgate serve: /healthz not ok within {timeout:.0f}s:\n{self.log_tail()}")

    def _limit_open_files(self) -> None:  # in the child, before exec
        import resource

        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> GateProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ probes

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.agi_port)

    def api(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
        """One HTTP API request with the bearer ``key``: its status and its JSON body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # http://127.0.0.1 only
            f"http://{LOOPBACK}:{self.http_port}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def healthz(self) -> tuple[int, dict[str, Any]]:
        url = f"http://{LOOPBACK}:{self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            with contextlib.suppress(ValueError):
                return exc.code, json.loads(exc.read())
            return exc.code, {}
        except (OSError, ValueError):
            return 0, {}

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        out.append(event)
        return out

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGATE_")}
        return subprocess.run(
            [str(DNCGATE), "--config", str(self.config_path), "--log-level", "warning", *args],
            capture_output=True, text=True, timeout=timeout, check=False, env=env,
        )

    def audit_tail(self, n: int = 50) -> list[dict[str, Any]]:
        proc = self.cli("audit", "tail", "--json", "-n", str(n))
        if proc.returncode != 0:
            raise LabError(f"dncgate audit tail failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]

    def audit_record(self, decision_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The durable audit record of one decision (the sink writes off the call's path: poll)."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.audit_tail(200):
                if record.get("decision_id") == decision_id:
                    return record
            if time.monotonic() > deadline:
                raise AssertionError(f"decision {decision_id} not in the audit within {timeout}s")
            time.sleep(0.2)


# ---------------------------------------------------------------------- Asterisk-side evidence

_DECISION = re.compile(r"dncgate: (allow|reject) decision=([0-9a-zA-Z_-]*) reason=([a-z_-]*)")


@dataclass(frozen=True)
class LoggedDecision:
    verdict: str
    decision_id: str
    reason: str


def decisions_in(log_text: str) -> list[LoggedDecision]:
    """Decisions the operator dialplan logged (its NoOp lines) in an Asterisk log extract."""
    return [LoggedDecision(*m.groups()) for m in _DECISION.finditer(log_text)]


_MSG_HEAD = re.compile(
    r"^-{10,} (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)\s*\n\s*UDP message (sent|received)[^\n]*\n\n?"
    r"([^\r\n]*)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class InviteTimings:
    first_response: float | None  # seconds from the INVITE sent to the first response after 100
    final: float | None  # ... to the first final response


def invite_timings(message_log: Path) -> InviteTimings:
    """Timings of the caller's INVITE from a SIPp -trace_msg log (timestamps of its separators)."""
    try:
        text = message_log.read_text(errors="replace")
    except OSError:
        return InviteTimings(None, None)
    sent: datetime | None = None
    first: float | None = None
    final: float | None = None
    for stamp, direction, start_line in _MSG_HEAD.findall(text):
        at = datetime.fromisoformat(stamp.replace(" ", "T"))
        if direction == "sent" and start_line.startswith("INVITE ") and sent is None:
            sent = at
            continue
        m = re.match(r"SIP/2\.0 (\d{3})", start_line)
        if sent is None or direction != "received" or not m:
            continue
        code = int(m.group(1))
        if code > 100 and first is None:
            first = (at - sent).total_seconds()
        if code >= 200 and final is None:
            final = (at - sent).total_seconds()
    return InviteTimings(first, final)


class AsteriskLogCursor:
    """Reads the decisions the operator dialplan logged in an Asterisk log, from where it was."""

    def __init__(self, lab: AsteriskLab) -> None:
        self.lab = lab
        self.offset = lab.log_size()

    def decisions(self, expect: int, timeout: float = 5.0) -> list[LoggedDecision]:
        """The decisions logged since the last call (waits for ``expect`` of them); moves on."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.lab.log_text(self.offset)
            found = decisions_in(text)
            if len(found) >= expect or time.monotonic() > deadline:
                self.offset += len(text.encode())
                return found
            time.sleep(0.05)

    def decision(self) -> LoggedDecision:
        found = self.decisions(1)
        assert len(found) == 1, f"expected one decision in the Asterisk log, found {found}"
        return found[0]


def uac_message_log(call_dir: Path | None) -> Path:
    assert call_dir is not None
    return call_dir / "uac-messages.log"
