"""A real OpenTelemetry Collector (built by mk/tracing.mk) receiving OTLP/gRPC on loopback and
writing every span it gets to a JSON-lines file, for tests to read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import tools

_START_TIMEOUT_S = 30.0
_WAIT_S = 20.0
SERVER, CLIENT = 2, 3  # OTLP SpanKind values


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def attrs(span: dict[str, Any]) -> dict[str, Any]:
    """A span's (or event's) attributes as a plain dict (OTLP JSON wraps each value)."""
    out: dict[str, Any] = {}
    for item in span.get("attributes", []):
        ((kind, value),) = item["value"].items()
        out[item["key"]] = int(value) if kind == "intValue" else value
    return out


@dataclass
class Collector:
    endpoint: str
    output: Path

    def raw(self) -> str:
        return self.output.read_text() if self.output.exists() else ""

    def spans(self) -> list[dict[str, Any]]:
        found = []
        for line in self.raw().splitlines():
            for resource in json.loads(line).get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    for span in scope.get("spans", []):
                        found.append({**span, "resource": attrs(resource["resource"])})
        return found

    async def wait_for(
        self, enough: Callable[[list[dict[str, Any]]], bool], timeout_s: float = _WAIT_S
    ) -> list[dict[str, Any]]:
        """The spans received, once ``enough`` says they are (fails after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        spans = self.spans()
        while not enough(spans):
            assert time.monotonic() < deadline, f"the collector did not get the spans: {spans}"
            await asyncio.sleep(0.1)
            spans = self.spans()
        return spans


@contextlib.asynccontextmanager
async def running_collector(directory: Path) -> AsyncIterator[Collector]:
    port = _free_port()
    output = directory / "spans.jsonl"
    config = directory / "otelcol.yaml"
    config.write_text(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n"
        f"        endpoint: 127.0.0.1:{port}\n"
        f"exporters:\n  file:\n    path: {output}\n    flush_interval: 100ms\n"
        "service:\n  telemetry:\n    metrics:\n      level: none\n"
        "  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [file]\n"
    )
    log = (directory / "otelcol.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        tools.find("otelcol"), f"--config={config}", stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            assert proc.returncode is None, (directory / "otelcol.log").read_text()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the collector did not start"
                await asyncio.sleep(0.1)
        yield Collector(f"http://127.0.0.1:{port}", output)
    finally:
        await tools.stop(proc)
        log.close()
