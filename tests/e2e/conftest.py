"""Fixtures for end-to-end tests against a real Asterisk 22 (cached sid chroot) and SIPp.

Fixtures (all on 127.0.0.1):

* ``asterisk_chroot`` (session) -> Path: builds/reuses the chroot (scripts/asterisk-chroot.sh);
  fails the test with the builder's output if it cannot be built. Never skips.
* ``dncgate_gate_address`` (session) -> (host, port): the FastAGI address Asterisk's globals
  DNCGATE_HOST/DNCGATE_PORT point at when it starts. Default: a free port nobody listens on
  (so "gate down" is the default). Override it in a conftest.py to start with the real gate.
* ``asterisk_lab`` (session) -> AsteriskLab: one Asterisk for the whole session, stopped at
  the end (killed if it does not stop).
* ``lab`` (function) -> AsteriskLab: the same Asterisk; after the test every global is reset
  to its start value (so ``lab.use_gate(port)`` / ``lab.set_global`` do not leak between tests),
  and a failing test gets the Asterisk log lines written during it attached to its report.

Typical use by a gate test::

    @pytest.fixture
    def gate(lab):
        with start_my_fastagi_server() as server:   # listening on 127.0.0.1:<port>
            lab.use_gate(server.port)
            yield server

    @pytest.mark.e2e
    def test_rejected(lab, gate):
        call = lab.place_call("+15551230607", tenant="acme", purpose="marketing")
        assert call.final_code == 607 and call.got_183 and call.rtp_packets > 0
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.lab import AsteriskLab, LabError, ensure_chroot, free_tcp_port

_log_key = pytest.StashKey[tuple[AsteriskLab, int]]()


@pytest.fixture(scope="session")
def asterisk_chroot() -> Path:
    try:
        return ensure_chroot()
    except LabError as exc:
        pytest.fail(f"Asterisk lab unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def dncgate_gate_address() -> tuple[str, int]:
    return ("127.0.0.1", free_tcp_port())


@pytest.fixture(scope="session")
def asterisk_lab(
    asterisk_chroot: Path, dncgate_gate_address: tuple[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AsteriskLab]:
    host, port = dncgate_gate_address
    lab = AsteriskLab(
        asterisk_chroot, gate_host=host, gate_port=port, artifacts=tmp_path_factory.mktemp("asterisk-calls")
    )
    try:
        lab.start()
    except LabError as exc:
        lab.cleanup()
        pytest.fail(f"Asterisk did not start: {exc}", pytrace=False)
    try:
        yield lab
    finally:
        lab.stop()
        lab.cleanup()


@pytest.fixture
def lab(asterisk_lab: AsteriskLab, request: pytest.FixtureRequest) -> Iterator[AsteriskLab]:
    request.node.stash[_log_key] = (asterisk_lab, asterisk_lab.log_size())
    yield asterisk_lab
    if asterisk_lab.process is not None and asterisk_lab.process.poll() is None:
        asterisk_lab.reset_globals()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _log_key in item.stash:
        lab, offset = item.stash[_log_key]
        text = lab.log_text(offset)
        if text:
            report.sections.append(("Asterisk log during this test", text[-20000:]))
    return report
