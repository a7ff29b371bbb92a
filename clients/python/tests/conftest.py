"""Fixtures: the REAL gateway (with its embedded vendor sandbox) as a subprocess on loopback.

The gateway binary is the repository venv's, found relative to this file; it binds port 0 and
the port is read from its ready file (``--ready-file``), written once it is SERVING.
Everything is bounded in time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from liveness_client import AsyncLivenessClient, LivenessClient

REPO_ROOT = Path(__file__).resolve().parents[3]
GATEWAY_BIN = Path(
    os.environ.get("LIVENESS_GATEWAY_BIN", REPO_ROOT / ".venv" / "bin" / "liveness-gateway")
)
LIVENESSCTL = Path(sys.executable).parent / "livenessctl"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclass
class Gateway:
    target: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="session")
def gateway() -> Iterator[Gateway]:
    assert GATEWAY_BIN.exists(), f"{GATEWAY_BIN} is missing: run `make setup` at the repo root"
    env = {
        **os.environ,
        # Loopback only, and no fixed ports: the gateway may also serve /metrics.
        "LIVENESS_METRICS_HOST": "127.0.0.1",
        "LIVENESS_METRICS_PORT": "0",
        "LIVENESS_GRACE_S": "1",
        # These tests send failure vectors on purpose, one after another, to one gateway:
        # keep its circuit breaker (tested on its own in the gateway's suite) out of the way.
        "LIVENESS_BREAKER_FAILURES": "1000000",
    }
    with tempfile.TemporaryDirectory(prefix="liveness-client-tests-") as work:
        env["LIVENESS_AUDIT_URL"] = f"sqlite:{work}/audit.db"  # for `livenessctl audit`
        ready, log = Path(work) / "ready.json", Path(work) / "gateway.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [str(GATEWAY_BIN), "serve", "--sandbox", "--host", "127.0.0.1", "--port", "0",
                 "--ready-file", str(ready)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
            )  # fmt: skip
        try:
            port = _wait_for_port(process, ready, log)
            yield Gateway(f"127.0.0.1:{port}", process, log)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)


def _wait_for_port(process: subprocess.Popen[bytes], ready: Path, log: Path) -> int:
    """The port from the ready file, which the gateway writes atomically once it serves."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.exists():
        if process.poll() is not None:
            pytest.fail("the gateway exited before it was ready:\n" + log.read_text())
        if time.monotonic() > deadline:
            pytest.fail(f"the gateway was not ready in {START_TIMEOUT_S}s:\n" + log.read_text())
        time.sleep(0.05)
    return int(json.loads(ready.read_text())["port"])


@pytest.fixture
def target(gateway: Gateway) -> str:
    return gateway.target


@pytest.fixture
async def client(target: str) -> AsyncIterator[AsyncLivenessClient]:
    async with AsyncLivenessClient(target) as client:
        yield client


@pytest.fixture
def sync_client(target: str) -> Iterator[LivenessClient]:
    with LivenessClient(target) as client:
        yield client


@pytest.fixture
def dead_target() -> Iterator[str]:
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


class FileServer:
    """A loopback HTTP server that serves in-memory files, for the url sources."""

    def __init__(self) -> None:
        files: dict[str, bytes] = {}
        self.files = files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.url}/{name}"


@pytest.fixture(scope="session")
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=STOP_TIMEOUT_S)
