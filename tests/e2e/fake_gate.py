"""A throw-away FastAGI responder for the lab self-test only (the real gate lives in dncgate/).

It reads the agi_* block, answers with SET VARIABLE commands chosen from the dialled number
(agi_arg_1) and hangs up the AGI session. Default rules, by the number's last three digits:

  ...603 / ...607 / ...608  -> reject with that SIP code and the English announcement
  ...999                    -> no variables at all (a gate that answers but decides nothing)
  anything else             -> allow
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

Verdict = dict[str, str]


def default_rule(number: str) -> Verdict:
    tail = number[-3:]
    if tail in ("603", "607", "608"):
        return {
            "DNCGATE_VERDICT": "reject",
            "DNCGATE_REASON": "fake-gate",
            "DNCGATE_SIPCODE": tail,
            "DNCGATE_ANNOUNCEMENT": "dncgate/en/declined",
            "DNCGATE_DECISION_ID": f"fake-{number}",
        }
    if tail == "999":
        return {}
    return {"DNCGATE_VERDICT": "allow", "DNCGATE_REASON": "fake-gate", "DNCGATE_DECISION_ID": f"fake-{number}"}


@dataclass
class AgiRequest:
    env: dict[str, str]
    script: str
    params: dict[str, str]
    number: str
    replies: list[str] = field(default_factory=list)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        env: dict[str, str] = {}
        while True:
            line = self.rfile.readline()
            if not line or line in (b"\n", b"\r\n"):
                break
            key, _, value = line.decode("utf-8", "replace").rstrip("\r\n").partition(": ")
            env[key] = value
        url = urlsplit("/" + env.get("agi_network_script", ""))
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        req = AgiRequest(env, url.path.lstrip("/"), params, env.get("agi_arg_1", ""))
        for name, value in self.server.rule(req.number).items():
            quoted = value.replace("\\", "\\\\").replace('"', '\\"')
            self.wfile.write(f'SET VARIABLE {name} "{quoted}"\n'.encode())
            self.wfile.flush()
            req.replies.append(self.rfile.readline().decode().strip())
        with self.server.lock:
            self.server.requests.append(req)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, rule: Callable[[str], Verdict]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rule = rule
        self.requests: list[AgiRequest] = []
        self.lock = threading.Lock()


class FakeGate:
    def __init__(self, rule: Callable[[str], Verdict] = default_rule) -> None:
        self._server = _Server(rule)
        self.host = "127.0.0.1"
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-gate", daemon=True
        )

    @property
    def requests(self) -> list[AgiRequest]:
        with self._server.lock:
            return list(self._server.requests)

    def __enter__(self) -> FakeGate:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


def _selfcheck() -> None:  # pragma: no cover - manual debugging aid
    with FakeGate() as gate, socket.create_connection((gate.host, gate.port)) as s:
        s.sendall(b"agi_network_script: check?tenant=a&purpose=marketing\nagi_arg_1: 15550607\n\n")
        print(s.recv(4096))
