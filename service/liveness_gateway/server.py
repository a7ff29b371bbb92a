"""grpc.aio server assembly: servicer, health, reflection; start and graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import aiohttp
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from liveness.v1 import liveness_pb2, liveness_pb2_grpc

from liveness_gateway.config import MAX_GRPC_MESSAGE_BYTES, GatewayConfig
from liveness_gateway.servicer import LivenessServicer
from liveness_gateway.transport import VendorTransport, new_session

log = logging.getLogger(__name__)

SERVICE_NAME = liveness_pb2.DESCRIPTOR.services_by_name["LivenessCheck"].full_name

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]


@dataclass
class RunningGateway:
    """A started gateway: where it listens and what must be closed on stop."""

    server: grpc.aio.Server
    port: int
    session: aiohttp.ClientSession
    health: health.aio.HealthServicer
    config: GatewayConfig

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain: NOT_SERVING first, then let in-flight RPCs finish, then close the session."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.config.grace_s if grace_s is None else grace_s)
        await self.session.close()


async def start(config: GatewayConfig) -> RunningGateway:
    """Build and start the server on ``config.host:config.port`` (0 picks a free port)."""
    session = new_session()
    transport = VendorTransport(session, max_reply_bytes=config.max_reply_bytes)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    liveness_pb2_grpc.add_LivenessCheckServicer_to_server(
        LivenessServicer(config, transport), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    if port == 0:
        await session.close()
        raise OSError(f"cannot listen on {config.host}:{config.port}")
    await server.start()
    # The vendor session is up and the port is bound: ready.
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningGateway(server, port, session, health_servicer, config)


async def serve_until_signalled(gateway: RunningGateway) -> None:
    """Run until SIGTERM or SIGINT, then drain within the configured grace period."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("signal received: draining for up to %.1fs", gateway.config.grace_s)
    finally:
        await gateway.stop()
        log.info("stopped")
