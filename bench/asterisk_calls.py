"""INVITE -> 180 delay and CPU per call through a real Asterisk 22, with and without a check.

    .venv/bin/python bench/asterisk_calls.py [--rates 25,50,100,150,200] [--seconds 8] [--list-size 1000000]

Needs root and the e2e lab (scripts/install-test-deps.sh). One Asterisk (the e2e lab's, in the
cached chroot) and one SIPp callee serve five routes side by side; for each rate, SIPp's uac
places calls to each route in turn (``-r RATE``, each call to a different, unlisted number, all
allowed), so load changes on the shared machine hit every variant alike:

  (i)   plain Dial, no check
  (ii)  an AstDB DB_EXISTS(dnc/NUMBER) check in the dialplan (AstDB pre-filled with the list)
  (iii) the operator subroutine (dialplan/asterisk/extensions_dncgate.conf) asking a do-nothing
        FastAGI responder (reads the agi_* block, sets DNCGATE_VERDICT=allow, closes)
  (iv)  the same subroutine asking ``dncgate serve`` (Redis store, national list of --list-size
        numbers, audit on)
  (v)   the same, asking a second ``dncgate serve`` with ``[replica] enabled`` (the list and the
        index of numbers with records in its process: no Redis round trip for a clear number)

Delay: per call, the INVITE sent -> the first 180 received, from the microsecond timestamps of
SIPp's ``-trace_msg`` log (SIPp's own response-time counters, ``-trace_rtt``, tick in 4 ms steps
here: too coarse for sub-millisecond differences). CPU: utime+stime of Asterisk, the
responder or gate, and Redis from /proc/<pid>/stat around each step, per 1,000 calls.
SIP message logging is off in Asterisk and its log file takes only notices and worse, so the
figures are the call path's. Prints numbers; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import RedisServer, free_port  # noqa: E402
from tests.e2e import lab as lab_module  # noqa: E402
from tests.e2e.gate_process import GateProcess, gate_config, load_lists  # noqa: E402
from tests.e2e.lab import LOOPBACK, SIPP_DIR, AsteriskLab, ensure_chroot, free_udp_port  # noqa: E402
from tests.ports import media_block  # noqa: E402

VARIANTS = {
    "81": "(i) plain Dial",
    "82": "(ii) AstDB DB_EXISTS",
    "83": "(iii) do-nothing FastAGI",
    "84": "(iv) dncgate FastAGI+Redis",
    "85": "(v) dncgate FastAGI+replica",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")

UAC = """\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bench uac">
  <send retrans="500" start_rtd="1">
    <![CDATA[
      INVITE sip:[field0]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "dialer" <sip:dialer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:dialer@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=dialer 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" rtd="1"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "dialer" <sip:dialer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Contact: <sip:dialer@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="200"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "dialer" <sip:dialer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      [routes]
      Contact: <sip:dialer@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""

NOOP_RESPONDER = """\
import asyncio, sys

async def handle(reader, writer):
    while (line := await reader.readline()) not in (b"", b"\\n", b"\\r\\n"):
        pass
    writer.write(b'SET VARIABLE DNCGATE_VERDICT "allow"\\n')
    await writer.drain()
    await reader.readline()
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def bench_dialplan(uas_port: int, noop_port: int, gate_port: int, replica_port: int) -> str:
    dial = f"Dial(PJSIP/callee/sip:${{EXTEN}}@{LOOPBACK}:{uas_port},15)"
    return textwrap.dedent(f"""
        ; bench/asterisk_calls.py: "8N" + number -> variant N
        [from-uac]
        exten => _81X.,1,Goto(bench-plain,${{EXTEN:2}},1)
        exten => _82X.,1,Goto(bench-astdb,${{EXTEN:2}},1)
        exten => _83X.,1,Goto(bench-noop-agi,${{EXTEN:2}},1)
        exten => _84X.,1,Goto(bench-dncgate,${{EXTEN:2}},1)
        exten => _85X.,1,Goto(bench-dncgate-replica,${{EXTEN:2}},1)

        [bench-plain]
        exten => _X.,1,{dial}
         same => n,Hangup()

        [bench-astdb]
        exten => _X.,1,GotoIf(${{DB_EXISTS(dnc/${{EXTEN}})}}?listed)
         same => n,{dial}
         same => n,Hangup()
         same => n(listed),Hangup(21)

        [bench-noop-agi]
        exten => _X.,1,Set(DNCGATE_PORT={noop_port})
         same => n,Gosub(dncgate-check,s,1(acme,marketing,${{EXTEN}}))
         same => n,{dial}
         same => n,Hangup()

        [bench-dncgate]
        exten => _X.,1,Set(DNCGATE_PORT={gate_port})
         same => n,Gosub(dncgate-check,s,1(acme,marketing,${{EXTEN}}))
         same => n,{dial}
         same => n,Hangup()

        [bench-dncgate-replica]
        exten => _X.,1,Set(DNCGATE_PORT={replica_port})
         same => n,Gosub(dncgate-check,s,1(acme,marketing,${{EXTEN}}))
         same => n,{dial}
         same => n,Hangup()
        """)


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


@dataclass
class Step:
    variant: str
    rate: int
    calls: int
    ok: int
    failed: int
    rtts_ms: list[float]
    cpu: dict[str, float]  # seconds per 1,000 calls
    gate_decisions: dict[str, int]  # the gate's decision log events during the step

    def pct(self, q: float) -> float:
        if not self.rtts_ms:
            return float("nan")
        data = sorted(self.rtts_ms)
        return data[min(len(data) - 1, int(q * len(data)))]


def gate_events(gate: GateProcess) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in gate.log_events():
        name = str(event.get("event", ""))
        if name.startswith("decision."):
            counts[name] = counts.get(name, 0) + 1
    return counts


def listed_numbers(count: int, seed: int = 7) -> list[int]:
    """``count`` US numbers +1 201 NXX XXXX with an even last digit (calls use odd ones)."""
    rng = random.Random(seed)
    base = 12012000000
    picks = rng.sample(range((12019999999 - base) // 2), count)
    return [base + 2 * p for p in picks]


def call_numbers(count: int, rng: random.Random) -> list[str]:
    base = 12012000000
    return [str(base + 2 * rng.randrange((12019999999 - base) // 2) + 1) for _ in range(count)]


_SEPARATOR = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.MULTILINE)
_CALL_ID = re.compile(r"^Call-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def invite_to_180_ms(message_log: str) -> list[float]:
    """Per call: first INVITE sent -> first 180 received, from SIPp's -trace_msg timestamps (us)."""
    parts = _SEPARATOR.split(message_log)  # [before, stamp, chunk, stamp, chunk, ...]
    sent: dict[str, datetime] = {}
    out: dict[str, float] = {}
    for stamp, chunk in zip(parts[1::2], parts[2::2], strict=True):
        body = chunk.lstrip("\n")
        direction = "sent" if body.startswith("UDP message sent") else "received"
        lines = body.split("\n", 3)
        start_line = lines[2].strip() if len(lines) > 2 and not lines[1].strip() else lines[1].strip()
        m = _CALL_ID.search(chunk)
        if not m:
            continue
        call_id = m.group(1)
        if direction == "sent" and start_line.startswith("INVITE ") and call_id not in sent:
            sent[call_id] = datetime.fromisoformat(stamp)
        elif direction == "received" and start_line.startswith("SIP/2.0 180") and call_id in sent \
                and call_id not in out:
            out[call_id] = (datetime.fromisoformat(stamp) - sent[call_id]).total_seconds() * 1000
    return list(out.values())


def fill_astdb(path: Path, numbers: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS astdb(key VARCHAR(256), value VARCHAR(256), PRIMARY KEY(key))")
    db.executemany("INSERT OR REPLACE INTO astdb VALUES (?, '1')", ((f"/dnc/{n}",) for n in numbers))
    db.commit()
    db.close()


def run_sipp(lab: AsteriskLab, workdir: Path, numbers: list[str], rate: int) -> tuple[int, int, list[float]]:
    step = Path(tempfile.mkdtemp(dir=workdir))
    (step / "uac.xml").write_text(UAC)
    (step / "numbers.csv").write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
    cmd = [
        "sipp", f"{LOOPBACK}:{lab.sip_port}", "-sf", "uac.xml", "-inf", "numbers.csv", "-r", str(rate),
        "-m", str(len(numbers)), "-l", "2000", "-i", LOOPBACK, "-mi", LOOPBACK, "-p", str(free_udp_port()),
        "-mp", str(media_block()), "-nostdin", "-trace_msg", "-message_file", "msgs.log", "-trace_stat",
        "-fd", "1", "-timeout", f"{len(numbers) // rate + 30}s", "-timeout_error", "-max_recv_loops", "10000",
    ]
    subprocess.run(cmd, cwd=step, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   timeout=len(numbers) / rate + 60)
    rtts = invite_to_180_ms((step / "msgs.log").read_text(errors="replace"))
    ok = failed = 0
    for stat_file in step.glob("uac_*_.csv"):
        lines = stat_file.read_text().splitlines()
        if len(lines) >= 2:
            header, last = lines[0].split(";"), lines[-1].split(";")
            row = dict(zip(header, last, strict=False))
            ok = int(row.get("SuccessfulCall(C)", 0) or 0)
            failed = int(row.get("FailedCall(C)", 0) or 0)
    shutil.rmtree(step, ignore_errors=True)
    return ok, failed, rtts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="25,50,100,150,200", help="calls/s, comma separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="calls per step = rate x seconds")
    parser.add_argument("--list-size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="run the whole ladder this many times")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    started = time.monotonic()

    chroot = ensure_chroot()
    work = Path(tempfile.mkdtemp(prefix="dncgate-bench-calls-"))
    redis = RedisServer(LOOPBACK, free_port(), work / "redis")
    redis.workdir.mkdir()
    redis.start()
    listed = listed_numbers(args.list_size)
    t0 = time.monotonic()
    load_lists(redis.url, {"national": listed})
    print(f"national list: {len(listed):,} numbers loaded into Redis in {time.monotonic() - t0:.1f} s", flush=True)

    gate = GateProcess(work / "gate", redis.url)
    replica = GateProcess(work / "gate-replica", redis.url)
    replica.config_text = gate_config(
        redis.url, agi_port=replica.agi_port, http_port=replica.http_port, timeout_ms=replica.timeout_ms,
        tenants=replica.tenants, spool_dir=replica.workdir / "audit-spool",
    ) + f'\n[replica]\nenabled = true\ndir = "{work / "replica"}"\n'
    noop_port = free_port()
    noop = subprocess.Popen([sys.executable, "-c", NOOP_RESPONDER, str(noop_port)], stdout=subprocess.PIPE)
    uas_port = free_udp_port()
    lab_module.MODULES = (*lab_module.MODULES, "func_db")  # DB_EXISTS; the lab does not load it
    uas: subprocess.Popen[bytes] | None = None
    lab: AsteriskLab | None = None
    try:
        assert noop.stdout is not None
        noop.stdout.readline()
        gate.start()
        replica.start()
        lab = AsteriskLab(chroot, gate_port=gate.agi_port, artifacts=work / "calls",
                          extra_dialplan=bench_dialplan(uas_port, noop_port, gate.agi_port, replica.agi_port))
        t0 = time.monotonic()
        fill_astdb(lab.session_dir / "lib" / "astdb.sqlite3", listed)
        print(f"AstDB: {len(listed):,} keys dnc/<number> written in {time.monotonic() - t0:.1f} s", flush=True)
        lab.start()
        lab.cli("pjsip set logger off")
        (lab.session_dir / "etc" / "logger.conf").write_text(
            "[general]\ndateformat = %F %T.%3q\n[logfiles]\nfull => notice,warning,error\n")
        lab.cli("logger reload")
        lab.cli("core set verbose 0")
        uas = subprocess.Popen(
            ["sipp", "-sf", str(SIPP_DIR / "uas.xml"), "-i", LOOPBACK, "-mi", LOOPBACK, "-p", str(uas_port),
             "-mp", str(media_block()), "-nostdin", "-l", "5000", "-max_recv_loops", "10000"],
            cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        assert lab.process is not None
        assert gate.process is not None
        assert replica.process is not None
        assert redis.process is not None
        pids = {"asterisk": lab.process.pid, "responder": noop.pid, "gate": gate.process.pid,
                "replica": replica.process.pid, "redis": redis.process.pid}
        rng = random.Random(11)
        print("warm-up: 20 calls/s x 2 s per variant", flush=True)
        for prefix in VARIANTS:
            run_sipp(lab, work, [prefix + n for n in call_numbers(40, rng)], 20)

        results: list[list[Step]] = []
        for rep in range(args.repeat):
            steps: list[Step] = []
            for rate in rates:
                for prefix, name in VARIANTS.items():
                    count = int(rate * args.seconds)
                    events_before = gate_events(replica if prefix == "85" else gate)
                    before = {k: cpu_seconds(p) for k, p in pids.items()}
                    ok, failed, rtts = run_sipp(lab, work, [prefix + n for n in call_numbers(count, rng)], rate)
                    after = {k: cpu_seconds(p) for k, p in pids.items()}
                    cpu = {k: (after[k] - before[k]) * 1000 / max(ok, 1) for k in pids}
                    time.sleep(0.3)  # the gate's log lines of the last calls
                    events = gate_events(replica if prefix == "85" else gate)
                    decisions = {k: events[k] - events_before.get(k, 0) for k in events
                                 if events[k] != events_before.get(k, 0)}
                    step = Step(name, rate, count, ok, failed, rtts, cpu, decisions)
                    steps.append(step)
                    print(f"  run {rep + 1} {rate:>4}/s {name:<28} ok {ok:>5} failed {failed:>3} "
                          f"180s {len(rtts):>5}  p50 {step.pct(.5):6.2f}  p95 {step.pct(.95):6.2f}  "
                          f"p99 {step.pct(.99):7.2f} ms  cpu/1k: ast {cpu['asterisk']:.2f}s "
                          f"resp {cpu['responder']:.2f}s gate {cpu['gate']:.2f}s replica gate "
                          f"{cpu['replica']:.2f}s redis {cpu['redis']:.2f}s"
                          + (f"  gate decisions {decisions}" if decisions else ""),
                          flush=True)
            results.append(steps)
        report(results, rates)
    finally:
        if uas is not None:
            uas.terminate()
            uas.wait(timeout=5)
        if lab is not None:
            lab.stop()
            lab.cleanup()
        gate.stop()
        replica.stop()
        noop.terminate()
        noop.wait(timeout=5)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.monotonic() - started:.0f} s")


def report(results: list[list[Step]], rates: list[int]) -> None:
    print("\nINVITE -> 180 (ms) p50 / p95 / p99, CPU seconds per 1,000 calls")
    for rep, steps in enumerate(results, 1):
        print(f"-- run {rep}")
        print(f"{'rate':>5}  {'variant':<28} {'p50':>6} {'p95':>6} {'p99':>7}  {'asterisk':>8} {'check':>6}"
              f" {'redis':>6}  failed")
        for s in steps:
            check = s.cpu["responder"] if s.variant.startswith("(iii)") else s.cpu["gate"] if \
                s.variant.startswith("(iv)") else s.cpu["replica"] if s.variant.startswith("(v)") else 0.0
            redis = s.cpu["redis"] if s.variant.startswith(("(iv)", "(v)")) else 0.0
            print(f"{s.rate:>5}  {s.variant:<28} {s.pct(.5):6.2f} {s.pct(.95):6.2f} {s.pct(.99):7.2f}  "
                  f"{s.cpu['asterisk']:8.2f} {check:6.2f} {redis:6.2f}  {s.failed}")
        by = {(s.variant, s.rate): s for s in steps}
        for gate_variant in ("84", "85"):
            print(f"dncgate {VARIANTS[gate_variant].split()[0]} minus do-nothing FastAGI (iii):")
            for rate in rates:
                iv, iii = by[(VARIANTS[gate_variant], rate)], by[(VARIANTS["83"], rate)]
                print(f"  {rate:>4}/s  p50 {iv.pct(.5) - iii.pct(.5):+6.2f} ms   "
                      f"p99 {iv.pct(.99) - iii.pct(.99):+6.2f} ms")
        print("knee (first rate whose p99 exceeds twice the lowest rate's p99 + 1 ms):")
        for name in VARIANTS.values():
            base = by[(name, rates[0])].pct(.99)
            knee = next((r for r in rates if by[(name, r)].pct(.99) > 2 * base + 1), None)
            print(f"  {name:<28} {knee if knee is not None else f'none up to {rates[-1]}'}")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("needs root (the Asterisk lab runs in a chroot)")
    asyncio.set_event_loop_policy(None)
    main()
