"""Tracing against a real OpenTelemetry Collector: a real gateway on the real sandbox exports
over OTLP/gRPC, the Collector writes what it received, the tests read it."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.config import TracingConfig
from liveness_gateway.logs import ACCESS_LOGGER
from liveness_gateway.sandbox import RunningSandbox
from liveness_gateway.server import RunningGateway
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests import tools
from tests.conftest import CHANNEL_OPTIONS
from tests.metrics_text import scrape
from tests.otel_collector import CLIENT, SERVER, Collector, attrs

DETECT = "/liveness.v1.LivenessCheck/Detect"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def traceparent(sampled: bool = True) -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}", trace_id, parent_id


async def detect(
    gateway: RunningGateway, data: bytes, metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[grpc.StatusCode, Any]:
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        try:
            reply = await stub.Detect(pb.DetectRequest(liveness_data=data), metadata=metadata)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as err:
            reply, code = None, err.code()
    if gateway.tracing is not None:  # export now, not at the batch's next tick
        await asyncio.to_thread(gateway.tracing.force_flush)
    return code, reply


async def sandbox_traceparents(sandbox: RunningSandbox) -> list[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.url}/_sandbox/stats") as resp,
    ):
        return list((await resp.json())["traceparents"])


def of_trace(spans: list[dict[str, Any]], trace_id: str, kind: int) -> list[dict[str, Any]]:
    return [s for s in spans if s["traceId"] == trace_id and s["kind"] == kind]


def counted(trace_id: str, servers: int, clients: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda spans: (
        len(of_trace(spans, trace_id, SERVER)) >= servers
        and len(of_trace(spans, trace_id, CLIENT)) >= clients
    )


Factory = Callable[..., Awaitable[RunningGateway]]


async def test_detect_continues_the_callers_trace_to_the_vendor(
    make_gateway: Factory, sandbox: RunningSandbox, collector: Collector
) -> None:
    gateway = await make_gateway(
        tracing=TracingConfig(collector.endpoint, resource_attributes={"team": "id"})
    )
    header, trace_id, parent_id = traceparent()
    code, reply = await detect(
        gateway,
        b"SANDBOX:score=0.995",
        (("traceparent", header), ("tracestate", "caller=1"), ("x-request-id", "req-1")),
    )
    assert code == grpc.StatusCode.OK
    assert reply.verdict == pb.VERDICT_HACK
    spans = await collector.wait_for(counted(trace_id, 1, 1))

    (server,) = of_trace(spans, trace_id, SERVER)
    assert server["parentSpanId"] == parent_id
    assert server["traceState"] == "caller=1"
    assert server["name"] == DETECT
    assert server["resource"]["service.name"] == "liveness-gateway"
    assert server["resource"]["team"] == "id"
    assert attrs(server) | {
        "rpc.system": "grpc",
        "rpc.service": "liveness.v1.LivenessCheck",
        "rpc.method": "Detect",
        "rpc.grpc.status_code": 0,
        "liveness_gateway.verdict": "hack",
        "liveness_gateway.caller": "anonymous",
        "liveness_gateway.vendor": "linkface",
        "liveness_gateway.request_id": "req-1",
    } == attrs(server)

    (client,) = of_trace(spans, trace_id, CLIENT)
    assert client["parentSpanId"] == server["spanId"]
    client_attrs = attrs(client)
    assert client_attrs["liveness_gateway.attempt"] == 1
    assert client_attrs["http.request.method"] == "POST"
    assert client_attrs["http.response.status_code"] == 200
    assert client_attrs["server.address"] == "127.0.0.1"
    assert client_attrs["url.full"].startswith("http://127.0.0.1:")
    assert "?" not in client_attrs["url.full"]
    assert client_attrs["liveness_gateway.vendor_request_id"] == reply.vendor_request_id
    # What the vendor received is the client span's context.
    assert (await sandbox_traceparents(sandbox))[-1] == f"00-{trace_id}-{client['spanId']}-01"


async def test_each_vendor_attempt_is_a_client_span_with_its_decisions(
    make_gateway: Factory, sandbox: RunningSandbox, collector: Collector
) -> None:
    gateway = await make_gateway(tracing=TracingConfig(collector.endpoint))
    header, trace_id, _ = traceparent()
    code, _ = await detect(gateway, b"SANDBOX:http=502", (("traceparent", header),))
    assert code == grpc.StatusCode.UNAVAILABLE
    spans = await collector.wait_for(counted(trace_id, 1, 3))
    (server,) = of_trace(spans, trace_id, SERVER)
    assert attrs(server)["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert attrs(server)["liveness_gateway.reason"]
    assert server["status"]["code"] == 2  # ERROR

    clients = sorted(
        of_trace(spans, trace_id, CLIENT), key=lambda s: attrs(s)["liveness_gateway.attempt"]
    )
    assert [attrs(s)["liveness_gateway.attempt"] for s in clients] == [1, 2, 3]
    assert [attrs(s).get("http.request.resend_count") for s in clients] == [None, 1, 2]
    for span in clients:
        assert span["parentSpanId"] == server["spanId"]
        assert attrs(span)["http.response.status_code"] == 502
        assert span["status"]["code"] == 2
        events = {e["name"]: attrs(e) for e in span.get("events", [])}
        assert events["liveness_gateway.breaker"]["liveness_gateway.vendor_health"] == "failing"
    decisions = [
        [e["name"] for e in s["events"] if e["name"] != "liveness_gateway.breaker"] for s in clients
    ]
    assert decisions == [["liveness_gateway.retry"]] * 2 + [["liveness_gateway.give_up"]]
    give_up = attrs(clients[2]["events"][-1])
    assert give_up["liveness_gateway.why"] == "max_attempts"
    # One request per attempt reached the vendor, each under its own span.
    received = (await sandbox_traceparents(sandbox))[-3:]
    assert received == [f"00-{trace_id}-{s['spanId']}-01" for s in clients]


async def test_the_callers_sampling_decision_is_kept(
    make_gateway: Factory, sandbox: RunningSandbox, collector: Collector
) -> None:
    gateway = await make_gateway(tracing=TracingConfig(collector.endpoint))
    unsampled, dropped_trace, _ = traceparent(sampled=False)
    sampled, kept_trace, _ = traceparent()
    await detect(gateway, b"SANDBOX:score=0.5", (("traceparent", unsampled),))
    # The vendor still gets the trace, marked not sampled.
    (received,) = (await sandbox_traceparents(sandbox))[-1:]
    assert received.startswith(f"00-{dropped_trace}-")
    assert received.endswith("-00")
    await detect(gateway, b"SANDBOX:score=0.5", (("traceparent", sampled),))
    spans = await collector.wait_for(counted(kept_trace, 1, 1))
    assert not [s for s in spans if s["traceId"] == dropped_trace]


async def test_ratio_sampler_without_a_parent_drops_all_at_zero(
    make_gateway: Factory, collector: Collector
) -> None:
    gateway = await make_gateway(
        tracing=TracingConfig(collector.endpoint, sampler="parentbased_traceidratio", sampler_arg=0)
    )
    code, _ = await detect(gateway, b"SANDBOX:score=0.5")
    assert code == grpc.StatusCode.OK
    header, trace_id, _ = traceparent()
    await detect(gateway, b"SANDBOX:score=0.5", (("traceparent", header),))
    spans = await collector.wait_for(counted(trace_id, 1, 1))
    assert {s["traceId"] for s in spans} == {trace_id}, "the root call was sampled"


async def test_access_lines_carry_the_trace_and_span_ids(
    make_gateway: Factory, collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    traced = await make_gateway(tracing=TracingConfig(collector.endpoint))
    untraced = await make_gateway()
    header, trace_id, _ = traceparent()
    await detect(traced, b"SANDBOX:score=0.5", (("traceparent", header),))
    await detect(untraced, b"SANDBOX:score=0.5", (("traceparent", header),))
    spans = await collector.wait_for(counted(trace_id, 1, 1))
    (server,) = of_trace(spans, trace_id, SERVER)
    lines = [r.__dict__ for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(line["trace_id"], line["span_id"]) for line in lines] == [
        (trace_id, server["spanId"]),
        ("", ""),  # tracing off: the keys are there, empty
    ]


async def test_tracing_off_sends_no_traceparent(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    gateway = await make_gateway()
    assert gateway.tracing is None
    header, _, _ = traceparent()
    before = await sandbox_traceparents(sandbox)
    await detect(gateway, b"SANDBOX:score=0.5", (("traceparent", header),))
    assert await sandbox_traceparents(sandbox) == before


async def _openmetrics(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept": OPENMETRICS}) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        return await resp.text()


def _exemplars(text: str, family_name: str) -> list[dict[str, str]]:
    return [
        dict(s.exemplar.labels)
        for family in text_string_to_metric_families(text)
        if family.name == family_name
        for s in family.samples
        if s.exemplar is not None
    ]


async def test_openmetrics_exemplars_name_exported_spans(
    make_gateway: Factory, collector: Collector, tool: Callable[[str], str]
) -> None:
    gateway = await make_gateway(tracing=TracingConfig(collector.endpoint))
    assert gateway.metrics_port
    header, trace_id, _ = traceparent()
    await detect(gateway, b"SANDBOX:score=0.5", (("traceparent", header),))
    spans = await collector.wait_for(counted(trace_id, 1, 1))
    (server,) = of_trace(spans, trace_id, SERVER)
    (client,) = of_trace(spans, trace_id, CLIENT)

    text = await _openmetrics(gateway.metrics_port)
    assert {"trace_id": trace_id, "span_id": server["spanId"]} in _exemplars(
        text, "grpc_server_handling_seconds"
    )
    assert {"trace_id": trace_id, "span_id": client["spanId"]} in _exemplars(
        text, "liveness_gateway_vendor_request_duration_seconds"
    )
    # The classic text format has no exemplars, and promtool still accepts it.
    plain = await scrape(gateway.metrics_port)
    assert trace_id not in plain
    result = await tools.promtool_check_metrics(tool("promtool"), plain)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_prometheus_ingests_the_exemplars(
    make_gateway: Factory, collector: Collector, tool: Callable[[str], str], tmp_path: Path
) -> None:
    """promtool cannot read OpenMetrics (prometheus/prometheus#8932): the real Prometheus
    server checks that exposition instead, by scraping it (it asks for OpenMetrics first) and
    keeping the exemplars, which must name exported traces."""
    gateway = await make_gateway(tracing=TracingConfig(collector.endpoint))
    assert gateway.metrics_port
    header, trace_id, _ = traceparent()
    await detect(gateway, b"SANDBOX:score=0.5", (("traceparent", header),))
    await collector.wait_for(counted(trace_id, 1, 1))
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: liveness-gateway\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{gateway.metrics_port}']\n"
    )
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        tool("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    found: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session:
            while trace_id not in found:
                assert time.monotonic() < deadline, f"no exemplar of {trace_id}: {found}"
                await asyncio.sleep(0.5)
                now = time.time()
                params = {
                    "query": "grpc_server_handling_seconds_bucket",
                    "start": str(now - 300),
                    "end": str(now + 60),
                }
                try:
                    async with session.get(
                        f"http://127.0.0.1:{port}/api/v1/query_exemplars", params=params
                    ) as resp:
                        body = await resp.json()
                except aiohttp.ClientError:
                    continue
                found = {
                    dict(e["labels"]).get("trace_id", "")
                    for series in body.get("data") or []
                    for e in series["exemplars"]
                }
    finally:
        await tools.stop(proc)
