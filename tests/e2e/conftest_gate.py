"""Fixtures running the real gate (``dncgate serve`` as its own process) for the e2e tests.

Not a conftest.py (tests/e2e/conftest.py is the lab's): a test module loads it with
``pytest_plugins = ["tests.e2e.conftest_gate"]`` (and must not import it).

* ``dncgate_serve`` (session) -> GateProcess: ``dncgate --config <tmp>/dncgate.toml serve`` on
  the session ``redis_server``, FastAGI and HTTP on free 127.0.0.1 ports, /healthz ok, national
  list = {LISTED}, tenant:acme list = {TENANT_LISTED}. Tenants: acme (607, technical prefix 9),
  strict (603), pilot (monitor).
* ``gate`` (function) -> GateProcess: the same process, with the lab's DNCGATE_HOST/PORT globals
  pointing at it for this test (the ``lab`` fixture resets them afterwards).
* ``asterisk_log`` (function) -> AsteriskLogCursor: the decisions the operator dialplan logged
  since the test started.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RedisServer
from tests.e2e.gate_process import STANDARD_LISTS, AsteriskLogCursor, GateProcess, load_lists
from tests.e2e.lab import AsteriskLab, LabError


@pytest.fixture(scope="session")
def dncgate_serve(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateProcess]:
    load_lists(redis_server.url, STANDARD_LISTS)
    gate = GateProcess(tmp_path_factory.mktemp("dncgate-serve"), redis_server.url)
    try:
        gate.start()
    except LabError as exc:
        pytest.fail(f"the real gate did not start: {exc}", pytrace=False)
    try:
        yield gate
    finally:
        gate.stop()


@pytest.fixture
def gate(lab: AsteriskLab, dncgate_serve: GateProcess, redis_server: RedisServer) -> GateProcess:
    if dncgate_serve.process is None or dncgate_serve.process.poll() is not None:
        pytest.fail(f"dncgate serve is not running:\n{dncgate_serve.log_tail()}", pytrace=False)
    # the session Redis is shared: make sure another test did not flush our lists
    load_lists(redis_server.url, STANDARD_LISTS)
    lab.use_gate(dncgate_serve.agi_port)
    return dncgate_serve


@pytest.fixture
def asterisk_log(lab: AsteriskLab) -> AsteriskLogCursor:
    return AsteriskLogCursor(lab)

