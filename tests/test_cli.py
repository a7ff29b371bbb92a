"""The ``liveness-gateway`` command as an operator runs it: a real process, real signals."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.cli import main
from liveness_gateway.config import GatewayConfig, VendorConfig

from tests.processes import clean_env

_STARTUP_TIMEOUT_S = 20.0


def test_refuses_to_start_without_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--port", "0"], env=clean_env())
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    for var in ("LINKFACE_API_ID", "LINKFACE_API_SECRET", "ACCUAUTH_API_ID", "ACCUAUTH_API_SECRET"):
        assert var in err[0]
    assert "--sandbox" in err[0]


def test_secret_file_variant(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    env = clean_env() | {"LINKFACE_API_SECRET_FILE": str(tmp_path / "missing")}
    assert main(["serve", "--port", "0"], env=env) == 2
    assert "LINKFACE_API_SECRET_FILE" in capsys.readouterr().err


def test_config_repr_hides_secrets() -> None:
    vendor = VendorConfig("linkface", "http://x", "id", "super-secret-value")
    config = GatewayConfig(linkface=vendor, accuauth=vendor)
    assert "super-secret-value" not in repr(config)
    assert "super-secret-value" not in str(vendor)


def test_serve_sandbox_answers_and_drains_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liveness_gateway",
            "serve",
            "--sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--grace",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stderr is not None
        port = None
        seen: list[str] = []
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"listening on \S+:(\d+)", line)
            if match:
                port = int(match.group(1))
        assert port, f"gateway did not report its port: {seen}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = liveness_pb2_grpc.LivenessCheckStub(channel)
            reply = stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.99"), timeout=10)
        assert reply.verdict == pb.VERDICT_HACK
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
