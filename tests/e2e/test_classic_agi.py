"""Real calls through classic AGI: Asterisk runs ``dncgate-agi`` inside its chroot.

Issue 3 item 7 (g). scripts/asterisk-chroot-python.sh installs python3 and a venv with this
checkout at /opt/dncgate inside the cached chroot. An Asterisk of this module's own runs the
operator subroutine (dialplan/asterisk/extensions_dncgate.conf) with its FastAGI line swapped for
``AGI(/opt/dncgate/bin/dncgate-agi,${number},tenant=...,purpose=...)``; calls dialled as
"77" + number take that route. dncgate-agi finds its configuration through DNCGATE_CONFIG in
the environment Asterisk hands its AGI children (set when this Asterisk starts), a TOML file
inside the chroot naming the session Redis (127.0.0.1: same network namespace).
"""

from __future__ import annotations

import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import RedisServer
from tests.e2e.gate_process import (
    CLEAR,
    LISTED,
    STANDARD_LISTS,
    TENANT_LISTED,
    AsteriskLogCursor,
    GateProcess,
    gate_config,
    invite_timings,
    load_lists,
    uac_message_log,
)
from tests.e2e.lab import OPERATOR_DIALPLAN, REPO_ROOT, AsteriskLab, CallResult, free_tcp_port, running_lab
from tests.e2e.test_gate_calls import assert_completed, assert_rejected_with_announcement

pytest_plugins = ["tests.e2e.conftest_gate"]  # fixture dncgate_serve (the relay test)

pytestmark = pytest.mark.e2e

CHROOT_PYTHON_SCRIPT = REPO_ROOT / "scripts" / "asterisk-chroot-python.sh"
AGI_BINARY = "/opt/dncgate/bin/dncgate-agi"
PREFIX = "77"  # "77" + number -> the classic-AGI route
START_TO_VERDICT_TARGET_MS = 80.0  # reported; bench/agi_classic.py measures it


def classic_subroutine() -> str:
    """The operator subroutine as [dncgate-check-classic], asking dncgate-agi instead of FastAGI."""
    text = OPERATOR_DIALPLAN.read_text()
    text, contexts = re.subn(r"^\[dncgate-check\]", "[dncgate-check-classic]", text, flags=re.MULTILINE)
    text, agis = re.subn(
        r"AGI\(agi://[^\n]*\)$",
        f"AGI({AGI_BINARY},${{number}},tenant=${{tenant}},purpose=${{purpose}})",
        text,
        flags=re.MULTILINE,
    )
    assert (contexts, agis) == (1, 1), f"{OPERATOR_DIALPLAN} changed shape: {contexts} contexts, {agis} AGI lines"
    return text


EXTRA_DIALPLAN = f"""
; classic AGI route (tests/e2e/test_classic_agi.py): merged into the lab's [from-uac]
[from-uac]
exten => _{PREFIX}X.,1,Gosub(lab-route-classic,s,1(${{EXTEN:{len(PREFIX)}}}))
 same => n,Hangup()

[lab-route-classic]
exten => s,1,NoOp(lab classic outbound ${{CALLERID(num)}} -> ${{ARG1}})
 same => n,Set(LOCAL(number)=${{ARG1}})
 same => n,Gosub(lab-import-vars,s,1)
 same => n,Set(LOCAL(tenant)=${{PJSIP_HEADER(read,X-Dncgate-Tenant)}})
 same => n,Set(LOCAL(purpose)=${{PJSIP_HEADER(read,X-Dncgate-Purpose)}})
 same => n,Gosub(dncgate-check-classic,s,1(${{tenant}},${{purpose}},${{number}}))
 same => n,Dial(PJSIP/callee/sip:${{number}}@127.0.0.1:${{LAB_UAS_PORT}},15)
 same => n,Hangup()

{classic_subroutine()}
"""


@pytest.fixture(scope="module")
def chroot_dncgate(asterisk_chroot: Path) -> Path:
    """python3 + /opt/dncgate (this checkout) inside the chroot; instant when already current."""
    proc = subprocess.run([str(CHROOT_PYTHON_SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"could not install dncgate inside the Asterisk chroot with {CHROOT_PYTHON_SCRIPT} "
            f"(exit {proc.returncode}):\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    if not (asterisk_chroot / AGI_BINARY.lstrip("/")).exists():
        pytest.fail(f"{AGI_BINARY} missing in {asterisk_chroot} after {CHROOT_PYTHON_SCRIPT}", pytrace=False)
    return asterisk_chroot


@pytest.fixture(scope="module")
def classic_config(chroot_dncgate: Path, redis_server: RedisServer) -> Iterator[str]:
    """A dncgate TOML inside the chroot (path as seen from inside) naming the session Redis."""
    inside = f"/tmp/dncgate-classic-{secrets.token_hex(6)}"
    host_dir = chroot_dncgate / inside.lstrip("/")
    host_dir.mkdir(parents=True)
    # agi/http are not used by dncgate-agi; the ports only have to be valid
    (host_dir / "dncgate.toml").write_text(gate_config(redis_server.url, agi_port=0, http_port=0))
    try:
        yield f"{inside}/dncgate.toml"
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def classic_lab(
    chroot_dncgate: Path, classic_config: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AsteriskLab]:
    # Asterisk hands its environment to AGI children: set it for this Asterisk's start only.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DNCGATE_CONFIG", classic_config)
        env.setenv("DNCGATE_LOG_LEVEL", "warning")
        lab = running_lab(
            chroot_dncgate, gate_port=free_tcp_port(), artifacts=tmp_path_factory.mktemp("classic-calls"),
            extra_dialplan=EXTRA_DIALPLAN,
        )
        started = lab.__enter__()
    try:
        yield started
    finally:
        lab.__exit__(None, None, None)


@pytest.fixture
def clab(classic_lab: AsteriskLab, redis_server: RedisServer) -> AsteriskLab:
    load_lists(redis_server.url, STANDARD_LISTS)
    return classic_lab


_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\]", re.MULTILINE)


def agi_step_ms(log_text: str) -> float | None:
    """Milliseconds from Asterisk executing AGI(dncgate-agi) to its next dialplan step."""
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if "AGI(\"PJSIP/dialer" in line and AGI_BINARY in line:
            for nxt in lines[i + 1:]:
                if "Executing [s@dncgate-check-classic:" in nxt:
                    a, b = _STAMP.match(line), _STAMP.match(nxt)
                    if a and b:
                        return (datetime.fromisoformat(b.group(1)) - datetime.fromisoformat(a.group(1))
                                ).total_seconds() * 1000
    return None


def _call(lab: AsteriskLab, number: str, **kwargs: str) -> tuple[CallResult, str]:
    offset = lab.log_size()
    call = lab.place_call(PREFIX + number.lstrip("+"), **kwargs)
    time.sleep(0.1)
    return call, lab.log_text(offset)


def test_classic_allowed_callee_completes(clab: AsteriskLab, request: pytest.FixtureRequest) -> None:
    cursor = AsteriskLogCursor(clab)
    call, log = _call(clab, CLEAR, tenant="acme", purpose="marketing")
    assert_completed(call)
    assert call.number == PREFIX + CLEAR.lstrip("+")
    logged = cursor.decision()
    assert (logged.verdict, logged.reason) == ("allow", "allowed_clear"), log[-3000:]
    step = agi_step_ms(log)
    print(f"classic AGI dialplan step (AGI start -> next priority, Asterisk log): {step} ms; "
          f"INVITE -> 180: {invite_timings(uac_message_log(call.log_dir)).first_response}")


@pytest.mark.parametrize(
    ("tenant", "number", "code", "reason"),
    [("acme", LISTED, 607, "national_dnc"), ("strict", LISTED, 603, "national_dnc"),
     ("acme", TENANT_LISTED, 607, "tenant_dnc")],
)
def test_classic_listed_callee_rejected(clab: AsteriskLab, tenant: str, number: str, code: int, reason: str) -> None:
    cursor = AsteriskLogCursor(clab)
    call, log = _call(clab, number, tenant=tenant, purpose="marketing")
    assert_rejected_with_announcement(call, code)
    logged = cursor.decision()
    assert (logged.verdict, logged.reason) == ("reject", reason), log[-3000:]


HEADER = (
    "agi_request: {binary}\nagi_channel: PJSIP/dialer-00000001\nagi_language: en\nagi_type: PJSIP\n"
    "agi_uniqueid: 1795809160.17\nagi_callerid: dialer\nagi_context: lab-route-classic\n"
    "agi_extension: s\nagi_priority: 17\nagi_accountcode: \nagi_arg_1: {number}\nagi_arg_2: tenant=acme\n"
    "agi_arg_3: purpose=marketing\n\n"
)


def _one_agi_run(chroot: Path, config: str, number: str, *env: str) -> tuple[float, float, str]:
    """Spawn dncgate-agi inside the chroot like Asterisk does; ms to the MSet verdict and to exit."""
    started = time.perf_counter()
    verdict_ms, verdict = 0.0, ""
    with tempfile.TemporaryFile() as errors, subprocess.Popen(
        ["chroot", str(chroot), "/usr/bin/env", "-i", f"DNCGATE_CONFIG={config}", "DNCGATE_LOG_LEVEL=warning",
         *env, AGI_BINARY],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(HEADER.format(binary=AGI_BINARY, number=number).encode())
        proc.stdin.flush()
        for line in iter(proc.stdout.readline, b""):
            if line.startswith(b"EXEC MSet"):
                verdict_ms = (time.perf_counter() - started) * 1000
                verdict = line.decode().split("DNCGATE_VERDICT=")[1].split(",")[0]
            proc.stdin.write(b"200 result=0\n")
            proc.stdin.flush()
        proc.stdin.close()
        proc.wait(timeout=60)
        if not verdict:  # the evidence of a run that gave no verdict: its exit code and log lines
            errors.seek(0)
            verdict = f"no verdict, exit {proc.returncode}: {errors.read()[-2000:].decode(errors='replace')}"
    return verdict_ms, (time.perf_counter() - started) * 1000, verdict


def test_classic_start_to_verdict_inside_chroot(
    chroot_dncgate: Path, classic_config: str, redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    load_lists(redis_server.url, STANDARD_LISTS)
    _one_agi_run(chroot_dncgate, classic_config, LISTED)  # warm the page cache
    runs = [_one_agi_run(chroot_dncgate, classic_config, LISTED) for _ in range(15)]
    assert {verdict for _, _, verdict in runs} == {"reject"}, runs
    to_verdict = sorted(r[0] for r in runs)
    to_exit = sorted(r[1] for r in runs)
    summary = (f"dncgate-agi inside the chroot over {len(runs)} runs: start->verdict p50 "
               f"{statistics.median(to_verdict):.1f} ms (min {to_verdict[0]:.1f}, max {to_verdict[-1]:.1f}); "
               f"start->exit p50 {statistics.median(to_exit):.1f} ms (max {to_exit[-1]:.1f}); "
               f"target start->verdict <= {START_TO_VERDICT_TARGET_MS:.0f} ms")
    print(summary)
    request.node.user_properties.append(("classic_agi", summary))
    # Reported, not asserted: a busy machine is not a regression (issue 11 item 20). The speed
    # target is measured by `bench/agi_classic.py --chroot`, beside a bare interpreter start.
    assert all(ms > 0 for ms in to_verdict), runs  # every run set its variables before exiting


def test_classic_relayed_to_dncgate_serve_inside_chroot(
    chroot_dncgate: Path, classic_config: str, dncgate_serve: GateProcess, redis_server: RedisServer,
    request: pytest.FixtureRequest,
) -> None:
    """The fast path: dncgate-agi hands the session to the running gate's FastAGI door."""
    load_lists(redis_server.url, STANDARD_LISTS)
    relay = f"DNCGATE_AGI_RELAY=127.0.0.1:{dncgate_serve.agi_port}"
    _one_agi_run(chroot_dncgate, classic_config, LISTED, relay)  # warm the page cache
    runs = [_one_agi_run(chroot_dncgate, classic_config, number, relay) for number in (LISTED, CLEAR) * 8]
    assert [verdict for _, _, verdict in runs] == ["reject", "allow"] * 8, runs
    to_verdict = sorted(r[0] for r in runs)
    summary = (f"dncgate-agi relayed to dncgate serve, inside the chroot, over {len(runs)} runs: start->verdict "
               f"p50 {statistics.median(to_verdict):.1f} ms (min {to_verdict[0]:.1f}, max {to_verdict[-1]:.1f}); "
               f"target <= {START_TO_VERDICT_TARGET_MS:.0f} ms")
    print(summary)
    request.node.user_properties.append(("classic_agi_relayed", summary))
    assert all(ms > 0 for ms in to_verdict), runs  # timing: bench/agi_classic.py --chroot
