"""``--workers 2``: two processes on one port, one /metrics that counts both."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc

from tests.metrics_text import sample
from tests.processes import clean_env

_STARTUP_TIMEOUT_S = 30.0
_CALLS = 24


def test_two_workers_share_the_port_and_metrics_add_up() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "liveness_gateway", "serve", "--sandbox", "--workers", "2",
         "--host", "127.0.0.1", "--port", "0", "--metrics-host", "127.0.0.1",
         "--metrics-port", "0", "--grace", "2"],
        stderr=subprocess.PIPE, text=True, env=clean_env(),
    )  # fmt: skip
    lines: list[dict] = []
    reader_done = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"msg": raw})
        reader_done.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        ports: set[tuple[int, int]] = set()
        metrics_port = None
        while time.monotonic() < deadline and (len(ports) < 2 or metrics_port is None):
            for line in list(lines):
                msg = line.get("msg", "")
                if m := re.search(r"worker \d listening on \S+:(\d+)", msg):
                    ports.add((line["pid"], int(m.group(1))))
                if m := re.search(r"metrics on http://\S+:(\d+)/metrics", msg):
                    metrics_port = int(m.group(1))
            time.sleep(0.05)
        assert len(ports) == 2, f"workers did not start: {lines}"
        assert len({port for _, port in ports}) == 1, "both workers bind the same port"
        port = next(iter(ports))[1]
        for i in range(_CALLS):  # a new connection each time: the kernel picks a worker
            with grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel:
                stub = liveness_pb2_grpc.LivenessCheckStub(channel)
                reply = stub.Detect(
                    pb.DetectRequest(liveness_data=b"SANDBOX:score=0.99\n%d" % i), timeout=10
                )
                assert reply.verdict == pb.VERDICT_HACK
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        rpc = {
            "grpc_service": "liveness.v1.LivenessCheck",
            "grpc_method": "Detect",
            "grpc_type": "unary",
        }
        assert sample(text, "grpc_server_handled_total", grpc_code="OK", **rpc) == _CALLS
        assert (
            sample(text, "liveness_gateway_verdicts_total", rpc="Detect", verdict="hack") == _CALLS
        )
        assert sample(text, "liveness_gateway_build_info") == 1
        serving = {line["pid"] for line in lines if line.get("logger") == "liveness_gateway.access"}
        assert len(serving) == 2, "both workers served calls"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
