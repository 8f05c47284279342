"""A real ``serve`` (SQLite store, API, enforcement, the console, on request the early warning) in a
thread of its own, with a clock the test moves, operator accounts of every role, a stale national list
and a tenant list.

The HTTP tests and the browser tests share it: the browser (selenium) and urllib are blocking, so
the gate runs its event loop in its own thread and stops within ``serve``'s shutdown bound."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dncgate.api.keys import hash_key, new_key
from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
from dncgate.operators import Role, new_operator
from dncgate.service import Running, serve
from dncgate.settings import Settings, load
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.operators import SqliteOperatorStore

PASSWORD = "console test password"
NOTICE_PERIOD_S = 3600
# not the store's deadline under test here: chromium starting on a busy machine kept one SQLite
# lookup past the default 250 ms, and the check failed closed (check_failed) instead of its verdict
STORE_TIMEOUT_MS = 5000
ACCOUNTS = {"ann": (Role.OPERATOR, ["acme"]), "vic": (Role.VIEWER, ["acme"]), "bob": (Role.OPERATOR, ["beta"]),
            "root": (Role.ADMIN, []), "eve": (Role.VIEWER, ["acme"])}


@dataclass
class ManualClock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


# the early warning for the synthetic campaign: acme's accounts watched by one rule, a refused share
# over at least 5 attempts (of the last hour); the checkpoint every second evaluates a finished 5 s slot
EARLY_WARNING = """
[early_warning]
enabled = true
path = "{path}"
checkpoint_interval_s = 1
[early_warning.tenants.acme]
default_rules = false
[early_warning.tenants.acme.rules.refused]
min_attempts = 5
"""


def _config(tmp: Path, keys: dict[str, str], early_warning: bool) -> Settings:
    key_tables = "".join(f'[api.keys.{tenant}-api]\ntenant = "{tenant}"\nsha256 = "{hash_key(key)}"\n'
                         for tenant, key in keys.items())
    tenants = "".join(f'[tenants.{t}]\nregion = "CN"\nmax_list_age_days = 31\n[tenants.{t}.hours]\nenabled = false\n'
                      for t in keys)
    text = f"""
[store]
path = "{tmp / 'dncgate.sqlite3'}"
timeout_ms = {STORE_TIMEOUT_MS}
[agi]
enabled = false
[http]
port = 0
[audit]
spool_dir = "{tmp / 'spool'}"
[api]
enabled = true
{key_tables}
[enforcement]
enabled = true
notice_period_s = {NOTICE_PERIOD_S}
auto_notice = false
scheduler_interval_s = 3600
[console]
enabled = true
{tenants}"""
    if early_warning:
        text += EARLY_WARNING.format(path=tmp / "early-warning.sqlite3")
    path = tmp / "dncgate.toml"
    path.write_text(text, encoding="utf-8")
    return load(path, environ={})


async def _prepare(settings: Settings, clock: ManualClock) -> None:
    store = SqliteListStore(settings.store.path)
    try:
        await store.replace_list("national", [8613800138000, 8613900139000])
        await store.set_sync_state("national", {"fresh_at": (clock.now - timedelta(days=40)).isoformat()})
        await store.replace_list("tenant:acme", [8618612345678])
    finally:
        await store.close()
    operators = SqliteOperatorStore(settings.store.path)
    try:
        for name, (role, tenants) in ACCOUNTS.items():
            await operators.put_operator(new_operator(name, role, tenants, PASSWORD, clock.now))
    finally:
        await operators.close()


class ConsoleGate:
    def __init__(self, tmp: Path, *, early_warning: bool = False) -> None:
        self.tmp = tmp
        self.keys = {"acme": new_key(), "beta": new_key()}
        self.settings = _config(tmp, self.keys, early_warning)
        self.clock = ManualClock()
        self.running: Running | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-gate", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        def ready(running: Running) -> None:
            self.running = running
            self._loop = asyncio.get_running_loop()
            self._ready.set()

        try:
            asyncio.run(serve(self.settings, on_ready=ready, handle_signals=False, clock=self.clock))
        except BaseException as exc:  # noqa: BLE001 -- reported by start() / stop()
            self.error = exc
            self._ready.set()

    def start(self) -> ConsoleGate:
        asyncio.run(_prepare(self.settings, self.clock))
        self._thread.start()
        if not self._ready.wait(30) or self.running is None:
            raise RuntimeError(f"the gate did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self.running is not None:
            self._loop.call_soon_threadsafe(self.running.stop.set)
        self._thread.join(30)

    @property
    def base(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.http_port}"

    def api(self, method: str, path: str, tenant: str = "acme", body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 -- the gate on loopback
            self.base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.keys[tenant]}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def check(self, number: str, tenant: str = "acme") -> Any:
        return self.api("GET", "/v1/check?" + urllib.parse.urlencode({"number": number, "purpose": "marketing"}),
                        tenant)

    def alert(self, tenant: str, originator: str, alert_id: str) -> Any:
        """An alert as the early warning raises it for a synthetic campaign (POST /v1/alerts)."""
        return self.api("POST", "/v1/alerts", tenant, {
            "alert_id": alert_id, "originator_kind": "account", "originator": originator,
            "rule": "campaign_volume", "severity": "warning", "window": "10m",
            "figures": {"calls": 240.0, "distinct_callees": 231.0, "reject_share": 0.61}, "threshold": 100.0})

    def open_case_of(self, account: str, tenant: str = "acme") -> str | None:
        """The id of the open case against ``account`` in the running serve's case store, if any."""
        assert self._loop is not None
        assert self.running is not None
        assert self.running.enforcement is not None
        key = OriginatorKey(tenant, OriginatorKind.ACCOUNT, account)
        found = asyncio.run_coroutine_threadsafe(self.running.enforcement.cases.store.open_case(key), self._loop)
        case = found.result(10)
        return None if case is None else case.case_id

    def audited(self, decision_id: str) -> bool:
        """Whether the audit has the decision yet (the sink writes in batches, some ms after the verdict)."""

        async def look() -> bool:
            store = SqliteListStore(self.settings.store.path)
            try:
                return await store.audit_record(decision_id) is not None
            finally:
                await store.close()

        return asyncio.run(look())

    def wait_audited(self, decision_id: str) -> None:
        for _ in range(200):  # bounded: the sink's linger is 50 ms
            if self.audited(decision_id):
                return
            threading.Event().wait(0.05)
        raise AssertionError(f"decision {decision_id} never reached the audit")


def http_error(call: Any) -> urllib.error.HTTPError:
    try:
        call()
    except urllib.error.HTTPError as exc:
        return exc
    raise AssertionError("expected an HTTP error")


class Client:
    """A cookie-keeping HTTP client that does not follow redirects: what a browser sends, without one."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310 -- loopback
        try:
            with self._opener.open(request, timeout=10) as response:
                return response.status, response.read().decode(), response.headers.get("Location", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), exc.headers.get("Location", "")

    def get(self, path: str) -> tuple[int, str, str]:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str, str]:
        return self.request("POST", path, form)

    def sign_in(self, name: str, password: str = PASSWORD) -> tuple[int, str, str]:
        _, page, _ = self.get("/console/login")
        return self.post("/console/login", {"csrf": csrf_of(page), "name": name, "password": password})

    def csrf(self, path: str = "/console/") -> str:
        return csrf_of(self.get(path)[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)
