"""Memory an unauthenticated client can make the gateway hold, measured on a real process.

gRPC reads a whole message before any handler runs (authentication included) and opens a
stream's window to the length the message header announces, so every stream can hold an
unfinished 6 MiB message. ``--max-streams-per-connection`` and ``--max-connections`` bound
that (SECURITY.md, "Memory"). The attack is a hand-driven HTTP/2 client (tests/h2raw.py) on
loopback; the gateway's RSS is read from /proc before, during and after it.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.auth import hash_token
from liveness_gateway.config import MAX_GRPC_MESSAGE_BYTES

from tests.h2raw import RawConnection, grpc_prefix, unfinished_messages
from tests.pki import Authority
from tests.processes import clean_env

_STARTUP_TIMEOUT_S = 20.0
MIB = 1024 * 1024
STREAMS = 4
CONNECTIONS = 4
ATTACK_STREAMS = 40
ATTACK_CONNECTIONS = 3
# What one held stream costs the process: the announced message plus gRPC's bookkeeping.
# Measured at 6.1 MiB per 6 MiB message (SECURITY.md); the slack covers allocator noise.
PER_STREAM_MIB = 6.5
SLACK_MIB = 24
TOKEN = "memory-test-token-" + "y" * 16


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@dataclass
class Gateway:
    proc: subprocess.Popen[str]
    port: int
    tls: ssl.SSLContext | None = None
    ca_pem: bytes | None = None

    def channel(self) -> grpc.Channel:
        if self.ca_pem is None:
            return grpc.insecure_channel(f"127.0.0.1:{self.port}")
        return grpc.secure_channel(
            f"127.0.0.1:{self.port}",
            grpc.ssl_channel_credentials(root_certificates=self.ca_pem),
            options=[("grpc.ssl_target_name_override", "gateway.test")],
        )

    def rss(self) -> float:
        return rss_mib(self.proc.pid)


def _start(*flags: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    # --max-* come in through the environment: a gateway without those settings ignores the
    # variables and shows the unbounded memory instead of failing on an unknown flag.
    proc = subprocess.Popen(  # noqa: S603  (our own command line)
        [sys.executable, "-m", "liveness_gateway", "serve", "--sandbox", "--host", "127.0.0.1",
         "--port", "0", "--metrics-port", "0", *flags],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env() | (env or {}),
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"listening on \S+:(\d+)", line)
        if match:
            # The rest of the log is drained, so that the gateway never blocks on a full pipe.
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(match.group(1))
    proc.kill()
    raise AssertionError(f"gateway did not start: {seen}")


LIMITS = {
    "LIVENESS_MAX_STREAMS_PER_CONNECTION": str(STREAMS),
    "LIVENESS_MAX_CONNECTIONS": str(CONNECTIONS),
}


@pytest.fixture(params=["plaintext", "tls+token"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    flags: list[str] = []
    tls = ca_pem = None
    if request.param == "tls+token":
        ca = Authority("memory-ca")
        cert, key = ca.issue("gateway.test", server=True).write(tmp_path, "server")
        callers = tmp_path / "callers.toml"
        callers.write_text(
            f'[[caller]]\nname = "app"\ntoken_sha256 = "{hash_token(TOKEN)}"\nrpcs = ["*"]\n'
        )
        flags = ["--tls-cert", str(cert), "--tls-key", str(key), "--callers-file", str(callers)]
        tls = ssl.create_default_context(cadata=ca.pem.decode())
        tls.set_alpn_protocols(["h2"])
        ca_pem = ca.pem
    proc, port = _start(*flags, env=LIMITS)
    try:
        yield Gateway(proc, port, tls, ca_pem)
    finally:
        proc.kill()
        proc.wait()


def _detect_and_health(gateway: Gateway) -> None:
    """A health check and a Detect on a connection of their own both succeed."""
    metadata = (("authorization", f"Bearer {TOKEN}"),) if gateway.tls else ()
    with gateway.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reply = liveness_pb2_grpc.LivenessCheckStub(channel).Detect(
            pb.DetectRequest(liveness_data=b"SANDBOX:score=0.2"), timeout=5, metadata=metadata
        )
        assert reply.verdict == pb.VERDICT_LIVE


def test_unfinished_messages_hold_a_bounded_amount_of_memory(gateway: Gateway) -> None:
    """The issue's attack: no token; on each of 40 streams a message header announcing 6 MiB
    and 6 MiB - 1 bytes of it, never the last byte; from 3 connections at once."""
    _detect_and_health(gateway)  # warm: the first calls allocate what every call reuses
    before = gateway.rss()
    attackers = [
        unfinished_messages(
            "127.0.0.1", gateway.port, ATTACK_STREAMS, MAX_GRPC_MESSAGE_BYTES, tls=gateway.tls
        )
        for _ in range(ATTACK_CONNECTIONS)
    ]
    try:
        for attacker in attackers:
            attacker.read_for(0.2)
        during = gateway.rss()
        held = [sum(1 for s in a.streams.values() if not s.reset) for a in attackers]
        buffered_mib = sum(s.sent for a in attackers for s in a.streams.values()) / MIB
        _detect_and_health(gateway)
    finally:
        for attacker in attackers:
            attacker.close()
    time.sleep(0.5)
    after = gateway.rss()
    bound = ATTACK_CONNECTIONS * STREAMS * PER_STREAM_MIB + SLACK_MIB
    print(
        f"RSS before {before:.0f} MiB, during {during:.0f} MiB, after {after:.0f} MiB; "
        f"streams held {held}, {buffered_mib:.0f} MiB sent; bound +{bound:.0f} MiB"
    )
    assert held == [STREAMS] * ATTACK_CONNECTIONS, "streams past the limit must be refused"
    assert during - before <= bound
    assert after - before <= bound
    _detect_and_health(gateway)


def test_connections_past_the_limit_are_closed_and_watch_streams_are_bounded() -> None:
    """10,000 health Watch streams (166 MiB before the limits) over as many connections as
    it takes: only max_connections x max_streams_per_connection of them are ever held."""
    proc, port = _start(env=LIMITS)
    try:
        before = rss_mib(proc.pid)
        per_connection = 10_000 // (CONNECTIONS + 2)
        clients = []
        for _ in range(CONNECTIONS + 2):
            client = RawConnection("127.0.0.1", port)
            for _ in range(per_connection):
                stream_id = client.open("/grpc.health.v1.Health/Watch")
                client.send(stream_id, grpc_prefix(0), end=True)
            client.flush()
            clients.append(client)
        for client in clients:
            client.read_for(0.3)
        during = rss_mib(proc.pid)
        watching = [
            sum(1 for s in c.streams.values() if s.data and not s.reset and not s.ended)
            for c in clients
        ]
        for client in clients:
            client.close()
        print(f"RSS before {before:.0f} MiB, during {during:.0f} MiB; watching {watching}")
        assert sum(watching) == CONNECTIONS * STREAMS
        assert all(n in (0, STREAMS) for n in watching)
        assert during - before < SLACK_MIB
    finally:
        proc.kill()
        proc.wait()
