"""A real Asterisk 22 + SIPp lab on loopback for dncgate's end-to-end tests.

Asterisk runs from the cached Debian sid chroot built by ``scripts/asterisk-chroot.sh``, in its
own mount namespace (``unshare --mount``: /proc is mounted for it only and disappears with it),
as root, in the foreground, with a per-session configuration directory under the chroot's /tmp.
Every address is 127.0.0.1; every port is picked free at start.

Calls are placed by SIPp (``tests/e2e/sipp/uac.xml``) towards Asterisk, whose lab dialplan runs
the operator subroutine ``dialplan/asterisk/extensions_dncgate.conf`` and then dials a per-call
SIPp callee (``tests/e2e/sipp/uas.xml``). The caller's SDP points at a Python UDP socket that
counts the RTP packets Asterisk sends and decodes their PCMU payload, so "early media arrived"
means real RTP carrying non-silent audio, not just a 183.

Per-call settings travel as SIP headers of the INVITE, read by the lab dialplan:

* ``X-Dncgate-Tenant`` / ``X-Dncgate-Purpose`` become ARG1/ARG2 of ``Gosub(dncgate-check,...)``;
* ``X-Lab-Var-<NAME>: <value>`` sets channel variable NAME before the Gosub (e.g. DNCGATE_PORT to
  send just this call to another FastAGI server); channel variables win over globals;
  ``LAB_ACCOUNT`` sets the channel's account code (the gate's ``agi_accountcode``: the originator's account).

Session-wide settings are dialplan globals; ``AsteriskLab.set_global`` changes them at run time
over AMI, ``AsteriskLab.use_gate`` points DNCGATE_HOST/DNCGATE_PORT at a FastAGI server.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests import ports

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROOT_SCRIPT = REPO_ROOT / "scripts" / "asterisk-chroot.sh"
OPERATOR_DIALPLAN = REPO_ROOT / "dialplan" / "asterisk" / "extensions_dncgate.conf"
PROMPTS_DIR = REPO_ROOT / "prompts" / "asterisk"
SIPP_DIR = Path(__file__).resolve().parent / "sipp"
DEFAULT_CHROOT = Path("/var/cache/dncgate/asterisk-sid")
LOOPBACK = "127.0.0.1"

# how often a call is placed again when SIPp could not bind its ports (exit 254, "Unable to bind")
SIPP_BIND_ATTEMPTS = 3

# Error finals the caller scenario accepts (and ACKs). Anything else is "unexpected" for SIPp,
# but the harness still reports it from the message log.
ERROR_CODES = (400, 403, 404, 408, 410, 480, 484, 486, 487, 488, 500, 501, 502, 503, 504, 600, 603, 604, 606, 607, 608)

# Modules the lab loads (autoload=no): SIP, RTP, ulaw, wav/sln/gsm playback, AGI, the dialplan
# applications and functions the subroutine uses, AMI (built in) and CDR events.
MODULES = (
    "res_pjproject",
    "res_sorcery_config",
    "res_sorcery_memory",
    "res_sorcery_astdb",
    "res_pjsip",
    "res_pjsip_pubsub",
    "res_pjsip_session",
    "res_pjsip_sdp_rtp",
    "res_pjsip_endpoint_identifier_user",
    "res_pjsip_header_funcs",
    "res_pjsip_caller_id",
    "res_pjsip_rfc3326",
    "res_pjsip_logger",
    "res_pjsip_outbound_authenticator_digest",
    "res_pjsip_authenticator_digest",
    "chan_pjsip",
    "res_rtp_asterisk",
    "res_timing_timerfd",
    "codec_ulaw",
    "codec_alaw",
    "codec_gsm",
    "format_wav",
    "format_pcm",
    "format_sln",
    "format_gsm",
    "pbx_config",
    "app_stack",
    "app_dial",
    "app_playback",
    "app_exec",
    "app_verbose",
    "res_agi",
    "res_speech",
    "func_strings",
    "func_uri",
    "func_cut",
    "func_logic",
    "func_channel",
    "func_callerid",
    "func_global",
    "bridge_simple",
    "bridge_native_rtp",
    "bridge_builtin_features",
    "cdr_manager",
)
# Checked over AMI after boot: if one of these failed to load the lab is unusable.
REQUIRED_MODULES = (
    "chan_pjsip",
    "res_pjsip_session",
    "res_agi",
    "app_playback",
    "app_dial",
    "app_stack",
    "pbx_config",
    "res_pjsip_header_funcs",
    "format_wav",
    "codec_ulaw",
    "func_strings",
    "func_uri",
    "res_rtp_asterisk",
)

DEFAULT_GLOBALS: dict[str, str] = {
    "DNCGATE_REJECT_CODE": "603",
    "DNCGATE_FAIL_CODE": "603",
    "DNCGATE_SERVICE_ON_FAILURE": "reject",
}


class LabError(RuntimeError):
    """The lab could not be built, started or driven."""


# --------------------------------------------------------------------------- ports


# One pool port serves either protocol (tests/ports.py checks both).
free_tcp_port = free_udp_port = ports.port


# --------------------------------------------------------------------------- chroot


def chroot_dir() -> Path:
    return Path(os.environ.get("DNCGATE_ASTERISK_CHROOT", str(DEFAULT_CHROOT)))


def ensure_chroot() -> Path:
    """Build the cached chroot if needed (idempotent; instant when already built)."""
    if os.geteuid() != 0:
        raise LabError("the Asterisk lab needs root (chroot, unshare --mount); run the e2e tests as root")
    for tool in ("unshare", "chroot", "sipp"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is not installed: run scripts/install-test-deps.sh")
    proc = subprocess.run([str(CHROOT_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise LabError(
            f"could not build the Asterisk chroot with {CHROOT_SCRIPT} (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    path = Path(proc.stdout.strip().splitlines()[-1])
    if not (path / "usr/sbin/asterisk").exists():
        raise LabError(f"{path} has no usr/sbin/asterisk after {CHROOT_SCRIPT}")
    return path


def _chroot_moddir(chroot: Path) -> str:
    conf = chroot / "etc/asterisk/asterisk.conf"
    with contextlib.suppress(OSError):
        m = re.search(r"^\s*astmoddir\s*=>\s*(\S+)", conf.read_text(), re.MULTILINE)
        if m:
            return m.group(1)
    found = sorted(chroot.glob("usr/lib/*/asterisk/modules"))
    if not found:
        raise LabError(f"no Asterisk module directory in {chroot}")
    return "/" + str(found[0].relative_to(chroot))


# --------------------------------------------------------------------------- AMI


class Ami:
    """Minimal synchronous AMI client: one connection per action, events off."""

    def __init__(self, port: int, username: str, secret: str) -> None:
        self.port = port
        self.username = username
        self.secret = secret
        self._ids = itertools.count(1)

    @staticmethod
    def _read_message(sock: socket.socket, buf: bytearray) -> dict[str, list[str]]:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise LabError("AMI connection closed")
            buf += chunk
        raw, _, rest = bytes(buf).partition(b"\r\n\r\n")
        buf[:] = rest
        msg: dict[str, list[str]] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                msg.setdefault(key.strip().lower(), []).append(value.strip() if key != "Output" else value[1:])
        return msg

    def action(self, action: str, timeout: float = 10.0, **fields: str) -> dict[str, list[str]]:
        with socket.create_connection((LOOPBACK, self.port), timeout=timeout) as sock:
            buf = bytearray()
            while b"\r\n" not in buf:
                chunk = sock.recv(1024)
                if not chunk:
                    raise LabError("AMI closed before its banner")
                buf += chunk
            del buf[: buf.index(b"\r\n") + 2]
            self._send(sock, "Login", Username=self.username, Secret=self.secret, Events="off")
            login = self._reply(sock, buf)
            if login.get("response", [""])[0] != "Success":
                raise LabError(f"AMI login failed: {login}")
            self._send(sock, action, **fields)
            reply = self._reply(sock, buf)
            with contextlib.suppress(OSError):
                self._send(sock, "Logoff")
            return reply

    def _send(self, sock: socket.socket, action: str, **fields: str) -> None:
        lines = [f"Action: {action}", f"ActionID: lab-{next(self._ids)}"]
        lines += [f"{k}: {v}" for k, v in fields.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _reply(self, sock: socket.socket, buf: bytearray) -> dict[str, list[str]]:
        while True:
            msg = self._read_message(sock, buf)
            if "response" in msg:
                return msg


# --------------------------------------------------------------------------- RTP sink


def _ulaw_to_linear(byte: int) -> int:
    u = ~byte & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


_ULAW = [_ulaw_to_linear(b) for b in range(256)]


class RtpSink:
    """A UDP socket on 127.0.0.1 that counts RTP packets (RFC 3550 version 2) sent to it."""

    def __init__(self) -> None:
        self.sock = ports.bound_udp_socket()
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.packets = 0
        self.non_rtp = 0
        self.payload_types: set[int] = set()
        self.sources: set[tuple[str, int]] = set()
        self.pcmu = bytearray()
        self.first_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rtp-sink-{self.port}", daemon=True)

    def __enter__(self) -> RtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                self.non_rtp += 1
                continue
            csrc = data[0] & 0x0F
            header = 12 + 4 * csrc
            if data[0] & 0x10 and len(data) >= header + 4:  # extension header
                header += 4 + 4 * int.from_bytes(data[header + 2 : header + 4], "big")
            pt = data[1] & 0x7F
            self.packets += 1
            self.payload_types.add(pt)
            self.sources.add((addr[0], addr[1]))
            if self.first_at is None:
                self.first_at = time.monotonic()
            if pt == 0:
                self.pcmu += data[header:]

    def audio_rms(self) -> float:
        """RMS of the received PCMU audio, 0..32767 (0 when none)."""
        if not self.pcmu:
            return 0.0
        total = sum(_ULAW[b] ** 2 for b in self.pcmu)
        return math.sqrt(total / len(self.pcmu))


# --------------------------------------------------------------------------- SIP message logs


@dataclass
class SipMessage:
    direction: str  # "sent" | "received"
    start_line: str
    headers: list[tuple[str, str]]
    body: str

    @property
    def status(self) -> int | None:
        m = re.match(r"SIP/2\.0 (\d{3})", self.start_line)
        return int(m.group(1)) if m else None

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0] if self.status is None else ""

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def cseq_method(self) -> str:
        values = self.header("CSeq")
        return values[0].split()[-1].upper() if values else ""


_LOG_SPLIT = re.compile(r"^-{10,} .*$", re.MULTILINE)
_LOG_KIND = re.compile(r"^\s*UDP message (sent|received)[^\n]*\n\n?", re.MULTILINE)


def parse_sipp_messages(text: str) -> list[SipMessage]:
    """Parse a SIPp -trace_msg message log into messages (UDP only)."""
    out: list[SipMessage] = []
    for chunk in _LOG_SPLIT.split(text):
        m = _LOG_KIND.search(chunk)
        if not m:
            continue
        raw = chunk[m.end() :].replace("\r\n", "\n").lstrip("\n")
        head, _, body = raw.partition("\n\n")
        lines = head.split("\n")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                headers.append((key.strip(), value.strip()))
        out.append(SipMessage(m.group(1), lines[0].strip(), headers, body.strip()))
    return out


# --------------------------------------------------------------------------- calls


@dataclass
class CallResult:
    number: str
    status_codes: list[int]  # every response to the INVITE, in order (retransmissions included)
    final_code: int | None  # the first final (>= 200) response to the INVITE, None if none came
    got_183: bool
    rtp_packets: int  # RTP packets Asterisk sent to the caller's SDP port
    rtp_payload_types: set[int]
    rtp_audio_seconds: float  # PCMU payload received, in seconds of audio
    rtp_audio_rms: float  # loudness of that audio (0 = silence / nothing)
    final_headers: list[tuple[str, str]]  # headers of the final response
    reached_callee: bool  # the callee SIPp got an INVITE
    callee_completed: bool  # ... and the call ended there with BYE/200
    duration: float
    uac_exit: int
    uac_messages: list[SipMessage] = field(repr=False, default_factory=list)
    uas_messages: list[SipMessage] = field(repr=False, default_factory=list)
    log_dir: Path | None = None

    @property
    def answered(self) -> bool:
        return self.final_code == 200

    def final_header(self, name: str) -> list[str]:
        return [v for k, v in self.final_headers if k.lower() == name.lower()]


def _sipp_cmd(scenario: Path, workdir: Path, name: str, *args: str, local_ip: str = LOOPBACK) -> list[str]:
    """SIPp running ``scenario`` once, its SIP and media on ``local_ip`` (a loopback address: a test
    playing a peer Asterisk identifies by its address uses another one of 127.0.0.0/8)."""
    return [
        "sipp",
        *args,
        "-sf",
        str(scenario),
        "-i",
        local_ip,
        "-mi",
        local_ip,
        "-m",
        "1",
        "-l",
        "1",
        "-nostdin",
        "-trace_msg",
        "-message_file",
        str(workdir / f"{name}-messages.log"),
        "-trace_err",
        "-error_file",
        str(workdir / f"{name}-errors.log"),
    ]


def _terminate(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _answered_in(message_log: Path) -> bool:
    try:
        msgs = parse_sipp_messages(message_log.read_text(errors="replace"))
    except OSError:
        return False
    return any(m.direction == "received" and m.status == 200 and m.cseq_method == "INVITE" for m in msgs)


def _bind_failed(sipp_output: Path) -> bool:
    """SIPp said it could not bind a socket (it then exits 254 without sending anything)."""
    try:
        return "Unable to bind" in sipp_output.read_text(errors="replace")
    except OSError:
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def _wait_bound(proc: subprocess.Popen[bytes], udp_ports: list[int], deadline: float = 5.0) -> bool:
    """Wait until ``proc`` holds all ``udp_ports`` (handed out free, so whoever holds them now is
    the SIPp we started); False when it exits first (e.g. "Unable to bind") or the deadline passes."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if proc.poll() is not None:
            return False
        if all(_port_in_use(p) for p in udp_ports):
            return True
        time.sleep(0.005)
    return False


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the test process dies (PR_SET_PDEATHSIG).

    The setting survives the exec chain unshare -> sh -> chroot -> asterisk, so a killed pytest
    does not leave Asterisk running.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


# --------------------------------------------------------------------------- Asterisk


class AsteriskLab:
    """One Asterisk process in the cached chroot plus the means to place calls through it."""

    def __init__(
        self,
        chroot: Path,
        *,
        gate_host: str = LOOPBACK,
        gate_port: int = 4573,
        global_vars: Mapping[str, str] | None = None,
        artifacts: Path | None = None,
        extra_dialplan: str = "",
        endpoint_options: Mapping[str, str] | None = None,
    ) -> None:
        self.chroot = chroot
        self.extra_dialplan = extra_dialplan
        self.endpoint_options = dict(endpoint_options or {})
        self.sip_port = free_udp_port()
        self.ami_port = free_tcp_port()
        bands = (ports.ASTERISK_RTP_END + 1 - ports.ASTERISK_RTP_START) // 200
        self.rtp_start = ports.ASTERISK_RTP_START + 200 * secrets.randbelow(bands)
        self.rtp_end = self.rtp_start + 199
        self.ami_user = "lab"
        self.ami_secret = secrets.token_hex(12)
        self.ami = Ami(self.ami_port, self.ami_user, self.ami_secret)
        self.session_inside = f"/tmp/dncgate-lab-{secrets.token_hex(6)}"  # path inside the chroot
        self.session_dir = chroot / self.session_inside.lstrip("/")
        self.artifacts = artifacts or self.session_dir / "calls"
        self.initial_globals: dict[str, str] = {
            "DNCGATE_HOST": gate_host,
            "DNCGATE_PORT": str(gate_port),
            **DEFAULT_GLOBALS,
            **dict(global_vars or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._stdout: Path = self.session_dir / "asterisk.stdout"
        self._calls = itertools.count(1)

    # ---------------------------------------------------------------- files

    @property
    def full_log(self) -> Path:
        return self.session_dir / "log" / "full"

    def log_size(self) -> int:
        try:
            return self.full_log.stat().st_size
        except OSError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with self.full_log.open("rb") as fh:
                fh.seek(since)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _write_config(self) -> None:
        s = self.session_inside
        etc = self.session_dir / "etc"
        for sub in ("etc", "run", "log", "spool", "lib", "cache"):
            (self.session_dir / sub).mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        files["asterisk.conf"] = f"""\
[directories]
astetcdir => {s}/etc
astmoddir => {_chroot_moddir(self.chroot)}
astvarlibdir => {s}/lib
astdbdir => {s}/lib
astkeydir => {s}/lib
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {s}/spool
astrundir => {s}/run
astlogdir => {s}/log
astsbindir => /usr/sbin
astcachedir => {s}/cache

[options]
verbose = 3
debug = 0
systemname = dncgate-lab
documentation_language = en_US
hideconnect = yes
transmit_silence = no
"""
        files["modules.conf"] = "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in MODULES)
        files["logger.conf"] = """\
[general]
dateformat = %F %T.%3q
[logfiles]
full => notice,warning,error,verbose(4),dtmf
"""
        endpoint_extra = "".join(f"{k} = {v}\n" for k, v in self.endpoint_options.items())
        files["pjsip.conf"] = f"""\
[global]
type = global
user_agent = dncgate-lab
endpoint_identifier_order = username

[system]
type = system
disable_tcp_switch = yes

[lab-udp]
type = transport
protocol = udp
bind = {LOOPBACK}:{self.sip_port}

[endpoint-common](!)
type = endpoint
transport = lab-udp
disallow = all
allow = ulaw
direct_media = no
media_address = {LOOPBACK}
bind_rtp_to_media_address = yes
rtp_symmetric = no
rewrite_contact = no
{endpoint_extra}
; the SIPp caller: identified by the user part of its From header ("dialer")
[dialer](endpoint-common)
context = from-uac

; the SIPp callee; lab calls dial PJSIP/callee/sip:<number>@127.0.0.1:<per-call port>
[callee](endpoint-common)
context = from-callee
"""
        files["rtp.conf"] = f"""\
[general]
rtpstart = {self.rtp_start}
rtpend = {self.rtp_end}
icesupport = no
strictrtp = no
"""
        files["manager.conf"] = f"""\
[general]
enabled = yes
bindaddr = {LOOPBACK}
port = {self.ami_port}
displayconnects = no

[{self.ami_user}]
secret = {self.ami_secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = all
"""
        files["cdr.conf"] = "[general]\nenable = yes\nunanswered = yes\n"
        files["cdr_manager.conf"] = "[general]\nenabled = yes\n"
        files["extensions.conf"] = self._extensions_conf()
        for quiet in ("cel.conf", "features.conf", "acl.conf", "udptl.conf", "pjproject.conf", "ccss.conf"):
            files[quiet] = "; intentionally empty (dncgate lab)\n"
        for name, text in files.items():
            (etc / name).write_text(text)
        shutil.copyfile(OPERATOR_DIALPLAN, etc / "extensions_dncgate.conf")

    def _extensions_conf(self) -> str:
        globals_block = "".join(f"{k} = {v}\n" for k, v in self.initial_globals.items())
        return f"""\
[general]
static = yes
writeprotect = yes
clearglobalvars = yes

[globals]
{globals_block}
#include extensions_dncgate.conf

; X-Lab-Var-<NAME>: <value> request headers -> channel variables (lab only)
[lab-import-vars]
exten => s,1,Set(LOCAL(names)=${{PJSIP_HEADERS(X-Lab-Var-)}})
 same => n(next),Set(LOCAL(name)=${{SHIFT(names)}})
 same => n,GotoIf($["${{name}}" = ""]?done)
 same => n,Set(${{CUT(name,-,4-)}}=${{PJSIP_HEADER(read,${{name}})}})
 same => n,Goto(next)
 same => n(done),Return()

; the outbound route: dncgate check, then the callee SIPp
[from-uac]
exten => _X.,1,Gosub(lab-route,s,1(${{EXTEN}}))
 same => n,Hangup()
exten => _+X.,1,Gosub(lab-route,s,1(${{EXTEN}}))
 same => n,Hangup()

[lab-route]
exten => s,1,NoOp(lab outbound ${{CALLERID(num)}} -> ${{ARG1}})
 same => n,Set(LOCAL(number)=${{ARG1}})
 same => n,Gosub(lab-import-vars,s,1)
 same => n,ExecIf($["${{LAB_ACCOUNT}}" != ""]?Set(CHANNEL(accountcode)=${{LAB_ACCOUNT}}))
 same => n,Set(LOCAL(tenant)=${{PJSIP_HEADER(read,X-Dncgate-Tenant)}})
 same => n,Set(LOCAL(purpose)=${{PJSIP_HEADER(read,X-Dncgate-Purpose)}})
 same => n,Gosub(dncgate-check,s,1(${{tenant}},${{purpose}},${{number}}))
 same => n,NoOp(lab: dncgate returned ${{GOSUB_RETVAL}})
 same => n,Dial(PJSIP/callee/sip:${{number}}@{LOOPBACK}:${{LAB_UAS_PORT}},15)
 same => n,Hangup()

[from-callee]
exten => _X.,1,Hangup(21)

{self.extra_dialplan}
"""

    def _install_prompts(self) -> None:
        dest = self.chroot / "usr/share/asterisk/sounds/dncgate"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(PROMPTS_DIR, dest, dirs_exist_ok=True)

    # ---------------------------------------------------------------- lifecycle

    def _remove_stale_sessions(self, max_age: float = 6 * 3600) -> None:
        """Session directories left behind by killed runs (never one that is in use: too young)."""
        now = time.time()
        for old in (self.chroot / "tmp").glob("dncgate-lab-*"):
            with contextlib.suppress(OSError):
                if now - old.stat().st_mtime > max_age:
                    shutil.rmtree(old, ignore_errors=True)

    def start(self, timeout: float = 60.0) -> None:
        self._remove_stale_sessions()
        self._write_config()
        self._install_prompts()
        # private mount namespace: these mounts vanish with Asterisk; /dev is bound only if the
        # chroot lacks device nodes (debootstrap normally creates them)
        script = (
            'mount -t proc proc "$1/proc" && '
            '{ [ -c "$1/dev/null" ] && [ -c "$1/dev/urandom" ] || mount --rbind /dev "$1/dev"; } && '
            'exec chroot "$1" /usr/sbin/asterisk -f -n -C "$2"'
        )
        conf = f"{self.session_inside}/etc/asterisk.conf"
        with self._stdout.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    "-c",
                    script,
                    "sh",
                    str(self.chroot),
                    conf,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only prctl(): safe between fork and exec
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise LabError(f"Asterisk exited with {self.process.returncode} while starting\n{self.diagnostics()}")
            try:
                self.cli("core waitfullybooted")
                break
            except (OSError, LabError) as exc:
                last = exc
                time.sleep(0.2)
        else:
            raise LabError(f"Asterisk did not accept AMI within {timeout:.0f}s ({last})\n{self.diagnostics()}")
        missing = [
            m
            for m in REQUIRED_MODULES
            if not re.search(rf"^{m}\.so\s.*\bRunning\b", self.cli(f"module show like {m}.so"), re.MULTILINE)
        ]
        if missing:
            raise LabError(f"Asterisk modules failed to load: {missing}\n{self.diagnostics()}")
        transports = self.cli("pjsip show transports")
        if f"{LOOPBACK}:{self.sip_port}" not in transports:
            raise LabError(f"PJSIP transport not up on {LOOPBACK}:{self.sip_port}:\n{transports}\n{self.diagnostics()}")
        self.cli("pjsip set logger on")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            # proc is Asterisk itself (unshare/sh/chroot all exec); SIGTERM is a clean "core stop now"
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def cleanup(self) -> None:
        """Remove the session directory (call after stop; keep it by setting DNCGATE_LAB_KEEP=1)."""
        if os.environ.get("DNCGATE_LAB_KEEP") != "1":
            shutil.rmtree(self.session_dir, ignore_errors=True)

    def diagnostics(self, lines: int = 60) -> str:
        out = []
        for path in (self._stdout, self.full_log):
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out)

    # ---------------------------------------------------------------- control

    def cli(self, command: str) -> str:
        reply = self.ami.action("Command", Command=command, timeout=30)
        if reply.get("response", [""])[0] not in ("Success", "Follows"):
            raise LabError(f"CLI {command!r} failed: {reply}")
        return "\n".join(reply.get("output", []))

    def set_global(self, name: str, value: str | int) -> None:
        reply = self.ami.action("Setvar", Variable=name, Value=str(value))
        if reply.get("response", [""])[0] != "Success":
            raise LabError(f"Setvar {name} failed: {reply}")

    def get_global(self, name: str) -> str:
        reply = self.ami.action("Getvar", Variable=name)
        return reply.get("value", [""])[0]

    def use_gate(self, port: int, host: str = LOOPBACK) -> None:
        """Send subsequent calls' FastAGI checks to host:port (until reset_globals)."""
        self.set_global("DNCGATE_HOST", host)
        self.set_global("DNCGATE_PORT", port)

    def reset_globals(self) -> None:
        for name, value in self.initial_globals.items():
            self.set_global(name, value)

    # ---------------------------------------------------------------- calls

    def place_call(
        self,
        number: str,
        *,
        tenant: str | None = "acme",
        purpose: str | None = "marketing",
        headers: Mapping[str, str] | None = None,
        variables: Mapping[str, str | int] | None = None,
        gate: tuple[str, int] | None = None,
        hold_ms: int = 300,
        timeout: float = 30.0,
    ) -> CallResult:
        """Call ``number`` from the SIPp caller through Asterisk; return what the caller saw.

        tenant/purpose travel as X-Dncgate-Tenant/X-Dncgate-Purpose (None leaves the header out);
        ``variables`` become channel variables via X-Lab-Var-<NAME> headers; ``gate`` sends this
        call's check to another FastAGI address (channel variables DNCGATE_HOST/DNCGATE_PORT).
        """
        if self.process is None or self.process.poll() is not None:
            raise LabError("Asterisk is not running")
        if not re.fullmatch(r"\+?[0-9]+", number):
            raise ValueError(f"lab numbers are digits with an optional leading +: {number!r}")
        n = next(self._calls)
        workdir = self.artifacts / f"call-{n:03d}-{number.lstrip('+')}"
        workdir.mkdir(parents=True, exist_ok=True)
        uas_port = free_udp_port()
        extra: dict[str, str] = {}
        if tenant is not None:
            extra["X-Dncgate-Tenant"] = tenant
        if purpose is not None:
            extra["X-Dncgate-Purpose"] = purpose
        all_vars: dict[str, str | int] = {"LAB_UAS_PORT": uas_port}
        if gate is not None:
            all_vars.update(DNCGATE_HOST=gate[0], DNCGATE_PORT=gate[1])
        all_vars.update(variables or {})
        for name, value in all_vars.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"bad variable name {name!r}")
            extra[f"X-Lab-Var-{name}"] = str(value)
        extra.update(headers or {})
        for key, value in extra.items():
            if "\n" in key or "\r" in key or "\n" in value or "\r" in value or ":" in key:
                raise ValueError(f"bad header {key!r}: {value!r}")

        started = time.monotonic()
        with RtpSink() as sink:
            scenario = workdir / "uac.xml"
            template = (SIPP_DIR / "uac.xml").read_text()
            error_recvs = "\n".join(
                f'  <recv response="{code}"{optional} next="failed"/>'
                for code, optional in zip(
                    ERROR_CODES, [' optional="true"'] * (len(ERROR_CODES) - 1) + [""], strict=True
                )
            )
            for attempt in range(1, SIPP_BIND_ATTEMPTS + 1):
                extra["X-Lab-Var-LAB_UAS_PORT"] = str(uas_port)
                scenario.write_text(
                    template.replace("@EXTRA_HEADERS@\n", "".join(f"      {k}: {v}\n" for k, v in extra.items()))
                    .replace("@RTP_PORT@", str(sink.port))
                    .replace("@HOLD_MS@", str(hold_ms))
                    .replace("@ERROR_RECVS@", error_recvs)
                )
                uac_exit = self._run_sipp_pair(scenario, workdir, number, uas_port, timeout)
                unbound = [side for side in ("uas", "uac") if _bind_failed(workdir / f"{side}.stdout")]
                if not unbound and uac_exit is not None:
                    break
                # SIPp could not bind a port, so this attempt says nothing about the gate: a
                # harness fault, not a verdict. Place the call again on fresh ports, and say so.
                print(f"[lab] SIPp {'+'.join(unbound)} could not bind a port calling {number} (attempt {attempt})")
                if attempt == SIPP_BIND_ATTEMPTS:
                    raise LabError(f"SIPp could not bind a port in {attempt} attempts; see {workdir}")
                uas_port = free_udp_port()
                for stale in workdir.glob("ua[cs]-*.log"):
                    stale.unlink()
            time.sleep(0.05)  # let the sink drain the last packets
        assert uac_exit is not None  # the loop above leaves only with a placed call
        duration = time.monotonic() - started

        uac_msgs = self._read_messages(workdir / "uac-messages.log")
        uas_msgs = self._read_messages(workdir / "uas-messages.log")
        invite_responses = [m for m in uac_msgs if m.direction == "received" and m.status and m.cseq_method == "INVITE"]
        codes = [m.status for m in invite_responses if m.status]
        finals = [m for m in invite_responses if m.status and m.status >= 200]
        got_invite = any(m.direction == "received" and m.method == "INVITE" for m in uas_msgs)
        got_bye = any(m.direction == "received" and m.method == "BYE" for m in uas_msgs)
        bye_ok = any(m.direction == "sent" and m.status == 200 and m.cseq_method == "BYE" for m in uas_msgs)
        return CallResult(
            number=number,
            status_codes=codes,
            final_code=finals[0].status if finals else None,
            got_183=183 in codes,
            rtp_packets=sink.packets,
            rtp_payload_types=set(sink.payload_types),
            rtp_audio_seconds=len(sink.pcmu) / 8000,
            rtp_audio_rms=sink.audio_rms(),
            final_headers=list(finals[0].headers) if finals else [],
            reached_callee=got_invite,
            callee_completed=got_invite and got_bye and bye_ok,
            duration=duration,
            uac_exit=uac_exit,
            uac_messages=uac_msgs,
            uas_messages=uas_msgs,
            log_dir=workdir,
        )

    def _run_sipp_pair(
        self, scenario: Path, workdir: Path, number: str, uas_port: int, timeout: float
    ) -> int | None:
        """Start the SIPp callee, place the call with the SIPp caller; the caller's exit code.

        None when the callee never got its ports bound: then no call is placed, so a bind
        failure on the callee side never costs the gate a request.
        """
        uas_media = ports.media_block()
        uas_out = (workdir / "uas.stdout").open("wb")
        uac_out = (workdir / "uac.stdout").open("wb")
        with uas_out, uac_out:
            uas = subprocess.Popen(
                _sipp_cmd(
                    SIPP_DIR / "uas.xml", workdir, "uas",
                    "-p", str(uas_port), "-mp", str(uas_media),
                    "-timeout", f"{int(timeout) + 5}s",
                ),
                stdin=subprocess.DEVNULL, stdout=uas_out, stderr=subprocess.STDOUT, cwd=workdir,
            )
            try:
                if not _wait_bound(uas, [uas_port, uas_media, uas_media + 2]):
                    return None
                uac = subprocess.Popen(
                    _sipp_cmd(
                        scenario, workdir, "uac", f"{LOOPBACK}:{self.sip_port}",
                        "-s", number, "-p", str(free_udp_port()), "-mp", str(ports.media_block()),
                        "-timeout", f"{int(timeout)}s", "-timeout_error",
                    ),
                    stdin=subprocess.DEVNULL, stdout=uac_out, stderr=subprocess.STDOUT, cwd=workdir,
                )
                try:
                    uac_exit = uac.wait(timeout=timeout + 10)
                finally:
                    _terminate(uac)
                # after a completed call the callee finishes by itself (BYE); give it a moment
                if _answered_in(workdir / "uac-messages.log"):
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        uas.wait(timeout=3)
            finally:
                _terminate(uas)
        return uac_exit

    @staticmethod
    def _read_messages(path: Path) -> list[SipMessage]:
        try:
            return parse_sipp_messages(path.read_text(errors="replace"))
        except OSError:
            return []


@contextlib.contextmanager
def running_lab(chroot: Path, **kwargs: object) -> Iterator[AsteriskLab]:
    lab = AsteriskLab(chroot, **kwargs)  # type: ignore[arg-type]
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        lab.cleanup()
