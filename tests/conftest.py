"""Fixtures: the real sandbox and the real gateway on loopback port 0, talking over sockets.

Two ways to run the gateway, one fixture each:

- in this process (``make_gateway``, ``make_stub``, ``gateway``, ``stub``): ``server.start``
  on the ``sandbox`` fixture, for every test of behaviour;
- as a real process (``processes``, see processes.py): for the command line, signals and
  ``--workers``.

A test is a *system* test (marker ``system``) when it reaches outside this Python process:
it starts real processes (``processes``) or drives an external program (``tool``,
``toxiproxy``, ``collector``, ``helm``). Using one of those fixtures marks it;
``pytest -m "not system"`` is the fast suite, which needs nothing but the virtualenv.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import web
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.config import MAX_GRPC_MESSAGE_BYTES, GatewayConfig, VendorConfig
from liveness_gateway.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from liveness_gateway.server import RunningGateway, start
from liveness_gateway.transport import Transport

from tests import tools
from tests.otel_collector import Collector, running_collector
from tests.processes import Processes
from tests.redis_server import RedisServer, running_redis

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
]


# Fixtures that reach outside this process: a test that uses one (even through another
# fixture) is a system test.
SYSTEM_FIXTURES = frozenset({"processes", "tool", "toxiproxy", "collector", "helm", "redis_server"})


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SYSTEM_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.system)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Start the gateway or the sandbox as real processes; all are stopped after the test."""
    started = Processes(tmp_path)
    yield started
    started.close()


@pytest.fixture
def tool() -> Callable[[str], str]:
    """Find an external program by name (tests/tools.py); a missing one fails the test."""
    return tools.find


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    """A real OpenTelemetry Collector receiving OTLP on loopback (tests/otel_collector.py)."""
    async with running_collector(tmp_path) as running:
        yield running


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """Debian's redis-server on a Unix socket in a temporary directory (tests/redis_server.py)."""
    with running_redis(tools.find("redis-server")) as server:
        yield server


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """The ``sandbox`` fixture's configuration; a module overrides it for other credentials."""
    return SandboxConfig.generate(download_timeout_s=1.0)


@pytest.fixture
async def sandbox(
    request: pytest.FixtureRequest, sandbox_config: SandboxConfig
) -> AsyncIterator[RunningSandbox]:
    """The sandbox; ``@pytest.mark.parametrize("sandbox", [{...}], indirect=True)`` sets its
    readings of the pages (``detect_file_part``, ``extra_bools``, ``image_encoding``)."""
    readings = getattr(request, "param", {})
    running = await start_sandbox(dataclasses.replace(sandbox_config, **readings))
    yield running
    await running.stop()


def config_for(sandbox: RunningSandbox, **overrides: Any) -> GatewayConfig:
    """A gateway configuration pointing at ``sandbox``, on a free loopback port."""
    vendors = {
        name: VendorConfig(
            name,
            sandbox.url,
            creds.api_id,
            creds.api_secret,
            overrides.pop(f"{name}_timeout_s", 5.0),
        )
        for name, creds in (
            ("linkface", sandbox.config.linkface),
            ("accuauth", sandbox.config.accuauth),
        )
    }
    for name in ("linkface", "accuauth"):
        if name in overrides:
            vendors[name] = dataclasses.replace(vendors[name], **overrides.pop(name))
    return GatewayConfig(
        linkface=vendors["linkface"],
        accuauth=vendors["accuauth"],
        host="127.0.0.1",
        port=0,
        grace_s=1.0,
        metrics_port=overrides.pop("metrics_port", 0),
        **overrides,
    )


GatewayFactory = Callable[..., Awaitable[liveness_pb2_grpc.LivenessCheckStub]]


@pytest.fixture
async def make_gateway(
    sandbox: RunningSandbox,
) -> AsyncIterator[Callable[..., Awaitable[RunningGateway]]]:
    """Start gateways with config overrides (and ``transport=`` to replace the vendors'
    sockets); all are stopped after the test."""
    gateways: list[RunningGateway] = []

    async def factory(*, transport: Transport | None = None, **overrides: Any) -> RunningGateway:
        gateway = await start(config_for(sandbox, **overrides), transport=transport)
        gateways.append(gateway)
        return gateway

    yield factory
    for gateway in gateways:
        await gateway.stop(0)


@pytest.fixture
async def make_stub(
    make_gateway: Callable[..., Awaitable[RunningGateway]],
) -> AsyncIterator[GatewayFactory]:
    """Start a gateway with config overrides and return a stub connected to it."""
    channels: list[grpc.aio.Channel] = []

    async def factory(**overrides: Any) -> liveness_pb2_grpc.LivenessCheckStub:
        gateway = await make_gateway(**overrides)
        channel = grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS)
        channels.append(channel)
        return liveness_pb2_grpc.LivenessCheckStub(channel)

    yield factory
    for channel in channels:
        await channel.close()


@pytest.fixture
async def gateway(make_gateway: Callable[..., Awaitable[RunningGateway]]) -> RunningGateway:
    return await make_gateway()


@pytest.fixture
async def stub(gateway: RunningGateway) -> AsyncIterator[liveness_pb2_grpc.LivenessCheckStub]:
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        yield liveness_pb2_grpc.LivenessCheckStub(channel)


@dataclasses.dataclass
class FileServer:
    """A loopback HTTP server that serves files for url sources."""

    url: str
    files: dict[str, bytes]
    delays: dict[str, float]

    def add(self, name: str, data: bytes, *, delay_s: float = 0.0) -> str:
        self.files[name] = data
        self.delays[name] = delay_s
        return f"{self.url}/{name}"


@pytest.fixture
async def file_server() -> AsyncIterator[FileServer]:
    import asyncio

    files: dict[str, bytes] = {}
    delays: dict[str, float] = {}

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            return web.Response(status=404)
        await asyncio.sleep(delays.get(name, 0.0))
        return web.Response(body=files[name], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    # handler_cancellation: a slow file's handler ends when its client gives up, so teardown
    # does not wait for the delay to run out.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield FileServer(f"http://127.0.0.1:{port}", files, delays)
    await runner.cleanup()
