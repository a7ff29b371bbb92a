"""Metrics, health, reflection, request ids and access logs, over real sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from liveness.v1 import liveness_pb2 as pb
from liveness_gateway.logs import ACCESS_LOGGER, JsonFormatter
from liveness_gateway.server import RunningGateway

from tests.metrics_text import sample, scrape

SERVICE = "liveness.v1.LivenessCheck"
GRPC = {"grpc_service": SERVICE, "grpc_type": "unary"}


async def test_metrics_preinitialised_before_any_call(gateway: RunningGateway) -> None:
    assert gateway.metrics_port
    text = await scrape(gateway.metrics_port)
    for method in ("Upload", "Detect", "AntiHack"):
        assert sample(text, "grpc_server_started_total", grpc_method=method, **GRPC) == 0
        for code in ("OK", "INVALID_ARGUMENT", "UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL"):
            labels = {"grpc_method": method, "grpc_code": code, **GRPC}
            assert sample(text, "grpc_server_handled_total", **labels) == 0
    assert (
        sample(
            text,
            "grpc_server_handled_total",
            grpc_service="grpc.health.v1.Health",
            grpc_method="Watch",
            grpc_type="server_stream",
            grpc_code="OK",
        )
        == 0
    )
    assert sample(text, "liveness_gateway_build_info") == 1
    assert (
        sample(
            text,
            "liveness_gateway_vendor_errors_total",
            vendor="linkface",
            endpoint="liveness_hack_detect",
            status="OUT_OF_QUOTA",
        )
        == 0
    )


async def test_detect_moves_score_bucket_verdict_and_server_metrics(
    gateway: RunningGateway, stub
) -> None:
    assert gateway.metrics_port
    await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.99"))
    text = await scrape(gateway.metrics_port)
    bucket = "liveness_gateway_score_bucket"
    labels = {"rpc": "Detect", "vendor": "linkface"}
    assert sample(text, bucket, le="0.99", **labels) == 1
    assert sample(text, bucket, le="0.98", **labels) == 0
    assert sample(text, "liveness_gateway_verdicts_total", rpc="Detect", verdict="hack") == 1
    assert sample(text, "liveness_gateway_verdicts_total", rpc="Detect", verdict="live") == 0
    assert sample(text, "grpc_server_started_total", grpc_method="Detect", **GRPC) == 1
    assert (
        sample(text, "grpc_server_handled_total", grpc_method="Detect", grpc_code="OK", **GRPC) == 1
    )
    assert sample(text, "grpc_server_handling_seconds_count", grpc_method="Detect", **GRPC) == 1
    vendor = {"vendor": "linkface", "endpoint": "liveness_hack_detect"}
    assert (
        sample(
            text, "liveness_gateway_vendor_request_duration_seconds_count", outcome="ok", **vendor
        )
        == 1
    )
    assert sample(text, "liveness_gateway_vendor_requests_in_flight", **vendor) == 0
    size = len(b"SANDBOX:score=0.99")
    assert sample(text, "liveness_gateway_payload_bytes_sum", rpc="Detect") == size


async def test_vendor_errors_by_status_with_unknown_folded(gateway: RunningGateway, stub) -> None:
    assert gateway.metrics_port
    for data in (
        b"SANDBOX:status=OUT_OF_QUOTA",
        b"SANDBOX:status=SOMETHING_NEW",
        b"SANDBOX:http=502",
    ):
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.AntiHack(pb.AntiHackRequest(liveness_data=data))
    text = await scrape(gateway.metrics_port)
    vendor = {"vendor": "accuauth", "endpoint": "liveness_anti_hack"}
    errors = "liveness_gateway_vendor_errors_total"
    assert sample(text, errors, status="OUT_OF_QUOTA", **vendor) == 1
    assert sample(text, errors, status="OTHER", **vendor) == 1
    # a 502 is retried: three attempts (the default), two of them retries
    assert sample(text, errors, status="VENDOR_HTTP_ERROR", **vendor) == 3
    assert sample(text, "liveness_gateway_vendor_retries_total", **vendor) == 2
    assert "SOMETHING_NEW" not in text
    handled = {"grpc_method": "AntiHack", **GRPC}
    assert sample(text, "grpc_server_handled_total", grpc_code="RESOURCE_EXHAUSTED", **handled) == 1
    assert sample(text, "grpc_server_handled_total", grpc_code="UNAVAILABLE", **handled) == 1
    assert sample(text, "grpc_server_handled_total", grpc_code="INTERNAL", **handled) == 1
    duration = "liveness_gateway_vendor_request_duration_seconds_count"
    assert sample(text, duration, outcome="vendor_error", **vendor) == 2
    assert sample(text, duration, outcome="http_error", **vendor) == 3


async def test_health_serving_then_not_serving_on_shutdown(gateway: RunningGateway) -> None:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.create_task(gateway.stop(1.0))
        update = await asyncio.wait_for(watch.read(), timeout=5)
        assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # an open stream would hold the stop for its whole grace period
        await stopping


async def test_ready_file_names_the_bound_ports_while_serving(
    make_gateway, sandbox, tmp_path
) -> None:
    path = tmp_path / "ready.json"
    gateway = await make_gateway(ready_file=str(path), health_port=0)
    ready = json.loads(path.read_text())
    assert ready == {
        "pid": os.getpid(),
        "port": gateway.port,
        "metrics_port": gateway.metrics_port,
        "health_port": gateway.health_port,
        "workers": [],
        "vendors": {"linkface": sandbox.url, "accuauth": sandbox.url},
    }
    assert 0 not in (gateway.port, gateway.metrics_port, gateway.health_port)
    assert [p.name for p in tmp_path.iterdir()] == ["ready.json"], "no temporary file is left"
    await gateway.stop(0)
    assert not path.exists(), "a stopping gateway is no longer ready"


async def test_reflection_lists_the_service(gateway: RunningGateway) -> None:
    def services() -> list[str]:
        with grpc.insecure_channel(gateway.address) as channel:
            return list(ProtoReflectionDescriptorDatabase(channel).get_services())

    names = await asyncio.to_thread(services)
    assert SERVICE in names
    assert "grpc.health.v1.Health" in names


async def test_reflection_can_be_turned_off(make_gateway) -> None:
    gateway = await make_gateway(reflection=False)

    def services() -> list[str]:
        with grpc.insecure_channel(gateway.address) as channel:
            return list(ProtoReflectionDescriptorDatabase(channel).get_services())

    with pytest.raises(grpc.RpcError) as caught:
        await asyncio.to_thread(services)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_request_id_echoed_or_generated_and_logged(
    stub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    call = stub.Detect(
        pb.DetectRequest(liveness_data=b"SANDBOX:score=0.2"),
        metadata=(("x-request-id", "req-abc-123"),),
    )
    await call
    assert ("x-request-id", "req-abc-123") in tuple(await call.trailing_metadata())

    call = stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:status=NO_FACE_DETECTED"))
    with pytest.raises(grpc.aio.AioRpcError):
        await call
    generated = dict(await call.trailing_metadata())["x-request-id"]
    assert len(generated) == 32

    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == ACCESS_LOGGER
    ]
    assert [line["request_id"] for line in lines] == ["req-abc-123", generated]
    ok, failed = lines
    assert ok["method"] == f"/{SERVICE}/Detect"
    assert ok["code"] == "OK"
    assert ok["vendor"] == "linkface"
    assert ok["vendor_request_id"].startswith("TID")
    assert ok["payload_bytes"] == len(b"SANDBOX:score=0.2")
    assert ok["duration_ms"] > 0
    assert failed["code"] == "INVALID_ARGUMENT"
    assert failed["reason"] == "NO_FACE_DETECTED"
    assert failed["vendor_request_id"].startswith("TID")


async def test_grpcurl_lists_services_without_a_proto(gateway: RunningGateway, tool) -> None:
    grpcurl = tool("grpcurl")
    result = await asyncio.to_thread(
        subprocess.run,
        [grpcurl, "-plaintext", gateway.address, "list"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert SERVICE in result.stdout.split()
    described = await asyncio.to_thread(
        subprocess.run,
        [grpcurl, "-plaintext", gateway.address, "describe", SERVICE],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert described.returncode == 0, described.stderr
    assert "rpc Detect ( .liveness.v1.DetectRequest )" in described.stdout


async def test_grpc_health_probe_reports_serving(gateway: RunningGateway, tool) -> None:
    probe = tool("grpc-health-probe")
    for service in ("", SERVICE):
        result = await asyncio.to_thread(
            subprocess.run,
            [probe, f"-addr={gateway.address}", f"-service={service}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "SERVING" in result.stdout + result.stderr
    await gateway.health.enter_graceful_shutdown()
    result = await asyncio.to_thread(
        subprocess.run,
        [probe, f"-addr={gateway.address}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 4  # grpc-health-probe: "unhealthy"
