"""The benchmark's reference servers answer as the benchmark assumes: the ceiling at once with
its constant reply, the floor with the sandbox's verdict for the payload (so the floor really
makes the vendor call it is meant to cost)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from liveness.v1 import liveness_pb2, liveness_pb2_grpc
from liveness_gateway.config import VendorConfig
from liveness_gateway.sandbox import RunningSandbox

NOOP_SERVER = Path(__file__).resolve().parent.parent / "bench" / "noop_server.py"


@pytest.fixture(scope="module")
def noop_server() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_noop_server", NOOP_SERVER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def _detect(port: int, data: bytes) -> liveness_pb2.DetectResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        response: liveness_pb2.DetectResponse = await stub.Detect(
            liveness_pb2.DetectRequest(liveness_data=data), timeout=10
        )
        return response


@pytest.fixture
async def ceiling(noop_server: ModuleType) -> AsyncIterator[int]:
    server, port, _ = await noop_server.start(0)
    yield port
    await server.stop(None)


async def test_ceiling_answers_its_constant_reply(ceiling: int, noop_server: ModuleType) -> None:
    response = await _detect(ceiling, b"SANDBOX:score=0.42\n")
    assert response == noop_server._REPLY


async def test_floor_answers_with_the_vendors_score(
    noop_server: ModuleType, sandbox: RunningSandbox
) -> None:
    creds = sandbox.config.linkface
    vendor = VendorConfig("linkface", sandbox.url, creds.api_id, creds.api_secret)
    server, port, session = await noop_server.start(0, vendor)
    try:
        response = await _detect(port, b"SANDBOX:score=0.42\n" + bytes(1000))
        assert response.score == pytest.approx(0.42)
        assert response.vendor_request_id
        assert sum(sandbox.state.requests.values()) == 1
    finally:
        await server.stop(None)
        await session.close()
