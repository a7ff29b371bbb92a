"""A real Prometheus server scrapes a running gateway; promtool lints the exposition."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import aiohttp
from liveness.v1 import liveness_pb2 as pb
from liveness_gateway.server import RunningGateway

from tests import tools
from tests.metrics_text import scrape

_PROMETHEUS_WAIT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_promtool_accepts_the_exposition(gateway: RunningGateway, stub, tool) -> None:
    assert gateway.metrics_port
    await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.5"))
    text = await scrape(gateway.metrics_port)
    result = await tools.promtool_check_metrics(tool("promtool"), text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


async def _query(session: aiohttp.ClientSession, base: str, promql: str) -> list[dict]:
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as resp:
        body = await resp.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def test_prometheus_scrapes_and_promql_sees_the_calls(
    gateway: RunningGateway, stub, tool, tmp_path: Path
) -> None:
    assert gateway.metrics_port
    for score in ("0.2", "0.3", "0.995"):
        await stub.Detect(pb.DetectRequest(liveness_data=f"SANDBOX:score={score}".encode()))
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: liveness-gateway\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{gateway.metrics_port}']\n"
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        tool("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        handled = (
            'sum(grpc_server_handled_total{grpc_service="liveness.v1.LivenessCheck",'
            'grpc_method="Detect",grpc_code="OK"})'
        )
        hacks = 'sum(liveness_gateway_verdicts_total{rpc="Detect",verdict="hack"})'
        deadline = time.monotonic() + _PROMETHEUS_WAIT_S
        result: list[dict] = []
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    result = await _query(session, base, handled)
                except aiohttp.ClientError:
                    result = []
                if result:
                    break
                await asyncio.sleep(0.5)
            assert result, "Prometheus did not scrape the gateway in time"
            assert float(result[0]["value"][1]) == 3
            hack_result = await _query(session, base, hacks)
            assert float(hack_result[0]["value"][1]) == 1
            up = await _query(session, base, 'up{job="liveness-gateway"}')
            assert float(up[0]["value"][1]) == 1
    finally:
        await tools.stop(proc)


def test_tools_present(tool) -> None:
    # Fails loudly (never skips) when the Makefile did not install them.
    for name in ("prometheus", "promtool"):
        assert tool(name)
