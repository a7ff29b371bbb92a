"""A real Redis for the fleet-mode tests: Debian's redis-server on a Unix socket.

No TCP port at all (``--port 0``), no persistence, its files in a fresh temporary directory
(short, so that the socket path stays within the 107 bytes a Unix socket name may have).
``stop()`` and ``start()`` again on the same socket: the "Redis restarted" of the tests.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


@dataclass
class RedisServer:
    binary: str
    directory: Path
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = (self.directory / "redis.log").open("ab")
        argv = [
            self.binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(  # noqa: S603  (a fixed argument list)
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.log()}")
            try:
                with redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1) as client:
                    client.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"redis-server not ready: {self.log()}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def running_redis(binary: str) -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="lg-redis-"))
    server = RedisServer(binary, directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
