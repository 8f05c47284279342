"""A real Redis Cluster on loopback for the tests: 3 masters and 3 replicas of the installed redis-server.

Each node gets its own free port, its own cluster-bus port (``--cluster-port``, from the suite's pool
rather than port + 10000) and its own directory; ``redis-cli --cluster create`` joins them. Start-up
and failover waits are bounded loops of short polls (guards that fail the test, never timing asserts).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.crc import key_slot

from tests.conftest import free_port, stop_process

LOOPBACK = "127.0.0.1"
NODES = 6
NODE_TIMEOUT_MS = 1000  # how long a master may be silent before its replica takes over
POLL = 0.05  # seconds between two polls of a wait
POLLS = 1200  # a wait gives up after this many polls (~60 s on an idle machine; never expected)


def command(port: int, *words: str) -> str:
    """One command to the node on ``port`` in RESP, its reply as text (bulk and status replies)."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        parts.append(f"${len(word.encode())}\r\n{word}\r\n".encode())
    with socket.create_connection((LOOPBACK, port), timeout=2) as sock:
        sock.sendall(b"".join(parts))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if _complete(data):
                break
    return data.decode(errors="replace")


def _complete(data: bytes) -> bool:
    if data[:1] in (b"+", b"-", b":"):
        return data.endswith(b"\r\n")
    if data[:1] == b"$":
        head, _, rest = data.partition(b"\r\n")
        return int(head[1:]) < 0 or len(rest) >= int(head[1:]) + 2
    return False


@dataclass
class ClusterNode:
    port: int
    bus_port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class RedisClusterLab:
    workdir: Path
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The store's URL: one node, the seed (the others are found from it)."""
        return f"redis://{LOOPBACK}:{self.nodes[0].port}/0"

    def start(self) -> None:
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if binary is None or cli is None:
            pytest.fail("redis-server and redis-cli are not installed: run scripts/install-test-deps.sh")
        for index in range(NODES):
            node = ClusterNode(free_port(), free_port(), self.workdir / f"node{index}")
            node.workdir.mkdir(parents=True)
            node.process = subprocess.Popen(
                [binary, "--bind", LOOPBACK, "--port", str(node.port), "--cluster-enabled", "yes",
                 "--cluster-port", str(node.bus_port), "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
                 "--dir", str(node.workdir), "--set-max-intset-entries", "1000000"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            self.nodes.append(node)
        for node in self.nodes:
            self._wait_ping(node)
        created = subprocess.run(
            [cli, "--cluster", "create", *(f"{LOOPBACK}:{n.port}" for n in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, timeout=120, check=False,
        )
        if created.returncode != 0:
            self.stop()
            pytest.fail(f"redis-cli --cluster create failed: {created.stdout.decode()[-2000:]}")
        self.wait_ok(self.nodes)

    def _wait_ping(self, node: ClusterNode) -> None:
        for _ in range(POLLS):
            if not node.alive():
                assert node.process is not None
                assert node.process.stderr is not None
                error = node.process.stderr.read().decode(errors="replace")
                self.stop()
                if "cluster" in error.lower():
                    pytest.skip(f"redis-server has no cluster support: {error.strip()[:300]}")
                pytest.fail(f"redis-server on {node.port} exited: {error[:300]}")
            try:
                if command(node.port, "PING").startswith("+PONG"):
                    return
            except OSError:
                pass
            time.sleep(POLL)
        self.stop()
        pytest.fail(f"redis-server on {node.port} did not answer PING")

    def wait_ok(self, nodes: list[ClusterNode], slot_not_on: int | None = None) -> None:
        """Until every node of ``nodes`` says cluster_state:ok (and, with ``slot_not_on``, none names that
        port as a master): a bounded loop."""
        for _ in range(POLLS):
            if all(self._ok(node.port, slot_not_on) for node in nodes):
                return
            time.sleep(POLL)
        self.stop()
        pytest.fail("the cluster did not reach cluster_state:ok")

    def _ok(self, port: int, slot_not_on: int | None) -> bool:
        try:
            if "cluster_state:ok" not in command(port, "CLUSTER", "INFO"):
                return False
            return slot_not_on is None or f":{slot_not_on}@" not in self._masters(port)
        except OSError:
            return False

    def _masters(self, port: int) -> str:
        """The lines of ``CLUSTER NODES`` of masters that serve slots. A killed master keeps its slots
        (``master,fail``) until its replica is promoted: it counts until then."""
        lines = command(port, "CLUSTER", "NODES").splitlines()
        return "\n".join(line for line in lines if "master" in line and len(line.split()) > 8)

    def master_of(self, key: str) -> ClusterNode:
        """The node that serves ``key``'s slot now."""
        slot = key_slot(key.encode())
        for line in command(self.nodes[0].port, "CLUSTER", "NODES").splitlines():
            words = line.split()
            if len(words) < 9 or "master" not in words[2]:
                continue
            for spec in words[8:]:
                first, _, last = spec.partition("-")
                if first.isdigit() and int(first) <= slot <= int(last or first):
                    port = int(words[1].split(":")[1].split("@")[0])
                    return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"no master serves slot {slot}")

    def replicated(self, master: ClusterNode) -> None:
        """Until the master's replica has every write so far (WAIT 1)."""
        for _ in range(POLLS):
            if command(master.port, "WAIT", "1", "100").startswith(":1"):
                return
        pytest.fail(f"the replica of {master.port} did not catch up")

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL: the master vanishes mid-load, as a crashed host would."""
        assert node.process is not None
        node.process.kill()
        node.process.wait(timeout=10)

    def flush(self) -> None:
        """FLUSHALL on every master (a replica refuses it and follows its master)."""
        for node in self.survivors():
            if "role:master" in command(node.port, "INFO", "replication"):
                command(node.port, "FLUSHALL", "SYNC")

    def survivors(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.alive()]

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive():
                assert node.process is not None
                stop_process(node.process)
            if node.process is not None and node.process.stderr is not None:
                node.process.stderr.close()


class Tarpit:
    """A listener on a dead node's port that accepts and never answers: what a host that is down
    (packets dropped, not refused) costs a client, a full timeout per connection. Counts connections."""

    def __init__(self, port: int) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, port))
        self._sock.listen(128)
        self._sock.settimeout(POLL)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tarpit", daemon=True)
        self._thread.start()

    @property
    def accepted(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sock.close()
        for conn in self._held:
            conn.close()


def cluster_lab(workdir: Path) -> RedisClusterLab:
    lab = RedisClusterLab(workdir)
    lab.start()
    return lab
