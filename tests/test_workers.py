"""``--workers 2``: two processes on one port, one /metrics that counts both."""

from __future__ import annotations

import urllib.request

import grpc
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc

from tests.metrics_text import sample
from tests.processes import Processes

_CALLS = 24


def test_two_workers_share_the_port_and_metrics_add_up(processes: Processes) -> None:
    gateway = processes.gateway("--workers", "2", "--grace", "2")
    # Ready only once both workers serve; the ready file names them.
    assert len(gateway.workers) == 2
    assert gateway.pid not in gateway.workers
    for i in range(_CALLS):  # a new connection each time: the kernel picks a worker
        with grpc.insecure_channel(
            gateway.address, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            stub = liveness_pb2_grpc.LivenessCheckStub(channel)
            reply = stub.Detect(
                pb.DetectRequest(liveness_data=b"SANDBOX:score=0.99\n%d" % i), timeout=10
            )
            assert reply.verdict == pb.VERDICT_HACK
    metrics = f"http://127.0.0.1:{gateway.metrics_port}/metrics"
    with urllib.request.urlopen(metrics, timeout=10) as r:
        text = r.read().decode()
    rpc = {
        "grpc_service": "liveness.v1.LivenessCheck",
        "grpc_method": "Detect",
        "grpc_type": "unary",
    }
    assert sample(text, "grpc_server_handled_total", grpc_code="OK", **rpc) == _CALLS
    assert sample(text, "liveness_gateway_verdicts_total", rpc="Detect", verdict="hack") == _CALLS
    assert sample(text, "liveness_gateway_build_info") == 1
    assert gateway.stop() == 0
    serving = {
        r["pid"] for r in gateway.log_records() if r.get("logger") == "liveness_gateway.access"
    }
    assert serving == set(gateway.workers), "both workers served calls on the one port"
