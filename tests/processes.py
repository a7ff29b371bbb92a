"""The gateway and the sandbox as real processes, the way an operator runs them.

One way to start them for every test that needs an OS process (signals, ``--workers``, the
command line itself): ``python -m liveness_gateway`` on loopback port 0 with a clean
environment, stderr to a log file, and readiness from the ready file (``--ready-file``, which
names the ports bound) and then from the standard health service, never from a log line.
The ``processes`` fixture (conftest.py) stops whatever a test leaves running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from liveness_gateway import readyfile

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
_HEALTH_TIMEOUT_S = 10.0


def clean_env() -> dict[str, str]:
    """This process' environment without any gateway or vendor settings (they would leak in)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LINKFACE_", "ACCUAUTH_", "LIVENESS_", "SANDBOX_"))
    }


@dataclass
class Process:
    """A started ``liveness-gateway`` process: what its ready file said, its log, its pid."""

    proc: subprocess.Popen[bytes]
    ready_path: Path
    log_path: Path
    ready: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        return self.ready.get("metrics_port")

    @property
    def health_port(self) -> int | None:
        return self.ready.get("health_port")

    @property
    def workers(self) -> list[int]:
        return list(self.ready.get("workers", []))

    @property
    def url(self) -> str:
        """The sandbox's base URL."""
        return str(self.ready["url"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines (the default --log-format); other lines as ``{"msg": line}``."""
        records = []
        for line in self.log().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"msg": line})
        return records

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator stops it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """The exit code, waiting at most ``timeout_s``."""
        return self.proc.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and the exit code."""
        self.terminate()
        return self.wait(timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@dataclass
class Processes:
    """Starts processes whose files go to ``directory``; :meth:`close` stops them all."""

    directory: Path
    started: list[Process] = field(default_factory=list)

    def gateway(
        self, *flags: str, sandbox: bool = True, env: dict[str, str] | None = None
    ) -> Process:
        """``liveness-gateway serve`` (on the embedded sandbox unless ``sandbox=False``),
        ready when its ready file is there and its health service says SERVING."""
        argv = ["serve", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--metrics-host", "127.0.0.1", "--metrics-port", "0"]
        if sandbox:
            argv.append("--sandbox")
        process = self._start("gateway", [*argv, *flags], env)
        try:
            _check_serving(f"127.0.0.1:{process.health_port or process.port}")
        except grpc.RpcError as err:
            raise AssertionError(f"health check failed: {err}; log:\n{process.log()}") from err
        return process

    def sandbox(self, *flags: str, env: dict[str, str] | None = None) -> Process:
        """``liveness-gateway sandbox``, ready when its ready file is there."""
        return self._start(
            "sandbox", ["sandbox", "--host", "127.0.0.1", "--port", "0", *flags], env
        )

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None) -> Process:
        index = len(self.started)
        ready_path = self.directory / f"{name}-{index}.ready.json"
        log_path = self.directory / f"{name}-{index}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(  # noqa: S603  (our own entry point, fixed arguments)
                [sys.executable, "-m", "liveness_gateway", *argv, "--ready-file", str(ready_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=clean_env() | (env or {}),
            )
        process = Process(proc, ready_path, log_path)
        self.started.append(process)
        try:
            process.ready = readyfile.wait(
                ready_path, timeout_s=START_TIMEOUT_S, alive=lambda: proc.poll() is None
            )
        except (TimeoutError, ChildProcessError) as exc:
            raise AssertionError(
                f"{name} did not get ready: {exc}; log:\n{process.log()}"
            ) from None
        return process

    def close(self) -> None:
        """Stop every process still running: SIGTERM, then SIGKILL after a bounded wait."""
        for process in self.started:
            process.terminate()
        for process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait()
            process.kill()


def _check_serving(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=_HEALTH_TIMEOUT_S
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING, reply
