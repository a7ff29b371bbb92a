"""``livenessctl`` as a user runs it: the installed console script, as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LIVENESSCTL, FileServer

CLI_TIMEOUT_S = 60.0


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def livenessctl(*args: str | Path, target: str | None = None, stdin: bytes | None = None) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")}
    if target is not None:
        env["LIVENESS_TARGET"] = target
    done = subprocess.run(
        [str(LIVENESSCTL), *map(str, args)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        env=env,
        check=False,
    )
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.fixture
def vector(tmp_path: Path) -> Any:
    def write(text: str) -> Path:
        path = tmp_path / f"v{len(list(tmp_path.iterdir()))}.bin"
        path.write_bytes(text.encode())
        return path

    return write


def test_detect_file_human(target: str, vector: Any) -> None:
    path = vector("SANDBOX:score=0.995")
    run = livenessctl("--request-id", "cli-1", "detect", path, target=target)
    assert run.code == 0, run.stderr
    lines = dict(line.split(None, 1) for line in run.stdout.splitlines())
    assert lines["verdict"] == "HACK"
    assert lines["score"] == "0.995"
    assert lines["threshold"] == "0.98"
    assert lines["vendor_request_id"].startswith("TID")
    assert lines["request_id"] == "cli-1"
    assert run.stderr == ""


def test_detect_json_and_options_after_the_command(target: str, vector: Any) -> None:
    run = livenessctl("detect", vector("SANDBOX:score=0.2"), "--json", "--target", target)
    assert run.code == 0, run.stderr
    out = run.json()
    assert (out["score"], out["verdict"], out["threshold"]) == (0.2, "LIVE", 0.98)


def test_target_flag_wins_over_env(target: str, dead_target: str, vector: Any) -> None:
    run = livenessctl("--target", target, "detect", vector("SANDBOX:score=0.2"), target=dead_target)
    assert run.code == 0, run.stderr


def test_detect_stdin_url_and_id(target: str, file_server: FileServer) -> None:
    run = livenessctl("--json", "detect", "-", target=target, stdin=b"SANDBOX:score=0.3")
    assert run.json()["score"] == 0.3
    url = file_server.add("cli.bin", b"SANDBOX:score=0.4")
    assert livenessctl("--json", "detect", "--url", url, target=target).json()["score"] == 0.4
    run = livenessctl("--json", "detect", "--id", "SANDBOX:score=0.6", target=target)
    assert run.json()["score"] == 0.6


def test_upload_file_and_url(target: str, vector: Any, file_server: FileServer) -> None:
    uploaded = livenessctl("--json", "upload", vector("SANDBOX:score=0.7"), target=target).json()
    assert uploaded["liveness_data_id"]
    detected = livenessctl("--json", "detect", "--id", uploaded["liveness_data_id"], target=target)
    assert detected.json()["score"] == 0.7
    url = file_server.add("cli-up.bin", b"SANDBOX:score=0.7")
    run = livenessctl("upload", "--url", url, target=target)
    assert run.code == 0
    assert run.stdout.startswith("liveness_data_id")


def test_upload_prints_its_idempotency_key_and_takes_one(target: str, vector: Any) -> None:
    data = vector("SANDBOX:score=0.6")
    uploaded = livenessctl("--json", "upload", data, target=target).json()
    assert len(uploaded["idempotency_key"]) == 36
    key = "0f8fad5b-d9cb-469f-a165-70867728950e"
    run = livenessctl("upload", data, "--idempotency-key", key, target=target)
    assert run.code == 0
    assert f"\nidempotency_key    {key}\n" in run.stdout
    bad = livenessctl("detect", data, "--idempotency-key", "order-4711", target=target)
    assert bad.code == 2
    assert "canonical 36-character" in bad.stderr


def test_antihack_image_and_extra(target: str, vector: Any, tmp_path: Path) -> None:
    out = tmp_path / "face.png"
    run = livenessctl(
        "antihack", vector("SANDBOX:score=0.1"), "--image", out, "--extra", target=target
    )
    assert run.code == 0, run.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "quality.mask_proba" in run.stdout
    assert f"written to {out}" in run.stdout
    as_json = livenessctl("--json", "antihack", "--image-id", "SANDBOX:score=0.99", target=target)
    assert as_json.json()["verdict"] == "HACK"
    assert as_json.json()["quality"] is None


def test_health(target: str) -> None:
    run = livenessctl("health", target=target)
    assert (run.code, run.stdout) == (0, "SERVING\n")
    assert livenessctl("--json", "health", target=target).json() == {"status": "SERVING"}


@pytest.mark.parametrize(
    ("vector_text", "code", "grpc_code", "reason"),
    [
        ("SANDBOX:status=NO_FACE_DETECTED", 3, "INVALID_ARGUMENT", "NO_FACE_DETECTED"),
        ("SANDBOX:status=OUT_OF_QUOTA", 4, "RESOURCE_EXHAUSTED", "OUT_OF_QUOTA"),
        ("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=0.3", 5, "RESOURCE_EXHAUSTED",
         "RATE_LIMIT_EXCEEDED"),
        ("SANDBOX:http=502", 6, "UNAVAILABLE", "VENDOR_HTTP_ERROR"),
        ("SANDBOX:status=UNAUTHORIZED", 8, "INTERNAL", "UNAUTHORIZED"),
    ],
)  # fmt: skip
def test_exit_code_per_failure_class(
    target: str, vector: Any, vector_text: str, code: int, grpc_code: str, reason: str
) -> None:
    path = vector(vector_text)
    run = livenessctl("detect", path, target=target)
    assert run.code == code
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line.startswith(f"livenessctl: error: {grpc_code} {reason}: ")
    as_json = livenessctl("--json", "detect", path, target=target)
    assert as_json.code == code
    error = as_json.json()["error"]
    assert (error["code"], error["reason"], error["exit_code"]) == (grpc_code, reason, code)
    assert error["metadata"]["vendor"] == "linkface"
    assert len(error["request_id"]) == 32
    assert f"request id {error['request_id']}" not in line  # a fresh id per call
    assert "request id " in line


def test_rate_limit_says_when_to_retry(target: str, vector: Any) -> None:
    path = vector("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=0.3")
    assert "retry after 0.3s" in livenessctl("detect", path, target=target).stderr
    assert (
        livenessctl("--json", "detect", path, target=target).json()["error"]["retry_after"] == 0.3
    )


def test_deadline_exit_code(target: str, vector: Any) -> None:
    run = livenessctl("--timeout", "0.5", "detect", vector("SANDBOX:delay_ms=3000"), target=target)
    assert run.code == 7
    assert run.stderr.startswith("livenessctl: error: DEADLINE_EXCEEDED")


def test_unavailable_exit_code(dead_target: str, vector: Any) -> None:
    run = livenessctl("--timeout", "5", "health", target=dead_target)
    assert run.code == 6
    [line] = run.stderr.splitlines()
    assert line.startswith("livenessctl: error: UNAVAILABLE")


def test_other_grpc_failures_exit_1(target: str) -> None:
    run = livenessctl("health", "--service", "no.such.Service", target=target)
    assert run.code == 1
    assert run.stderr.startswith("livenessctl: error: NOT_FOUND")


@pytest.mark.parametrize(
    "args",
    [
        ("detect",),
        ("detect", "missing-file.bin"),
        ("detect", "--url", "http://x/y", "--id", "z"),
        ("antihack", "--url", "http://x/y"),
        ("frobnicate",),
    ],
)
def test_usage_errors_exit_2(target: str, args: tuple[str, ...]) -> None:
    run = livenessctl(*args, target=target)
    assert run.code == 2
    assert run.stdout == ""
    assert "error:" in run.stderr
