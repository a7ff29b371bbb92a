"""The ``liveness-gateway`` command as an operator runs it: a real process, real signals."""

from __future__ import annotations

import json
import urllib.request

import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.cli import main
from liveness_gateway.config import GatewayConfig, VendorConfig

from tests.processes import Processes, clean_env


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


def test_serve_sandbox_answers_and_drains_on_sigterm(processes: Processes) -> None:
    gateway = processes.gateway("--grace", "2")
    with grpc.insecure_channel(gateway.address) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        reply = stub.Detect(
            pb.DetectRequest(liveness_data=b"SANDBOX:score=0.99"),
            timeout=10,
            metadata=(("x-request-id", "cli-access-line"),),
        )
    assert reply.verdict == pb.VERDICT_HACK
    assert gateway.stop() == 0
    assert not gateway.ready_path.exists(), "the ready file is removed on stop"
    # The deployed JSON handler writes the access line directly (logs.AccessLog).
    access = [r for r in gateway.log_records() if r.get("logger") == "liveness_gateway.access"]
    (line,) = [r for r in access if r["method"].endswith("/Detect")]
    assert line["msg"] == "rpc"
    assert line["level"] == "INFO"
    assert line["pid"] == gateway.pid
    assert line["method"] == "/liveness.v1.LivenessCheck/Detect"
    assert line["code"] == "OK"
    assert line["request_id"] == "cli-access-line"
    assert line["payload_bytes"] == len(b"SANDBOX:score=0.99")
    assert line["vendor"] == "linkface"


def test_sandbox_command_reports_its_port_and_stops_on_sigterm(processes: Processes) -> None:
    sandbox = processes.sandbox()
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}"
    stats = f"http://127.0.0.1:{sandbox.port}/_sandbox/stats"
    with urllib.request.urlopen(stats, timeout=10) as reply:
        assert json.load(reply)["total"] == 0
    assert sandbox.stop() == 0
    assert not sandbox.ready_path.exists(), "the ready file is removed on stop"
