"""The two limits the gateway is measured against, with its message types and server options.

``noop_server.py PORT``: the **ceiling**, a grpc.aio server whose Detect does nothing but
answer. ``noop_server.py PORT VENDOR_URL``: the **floor**, whose Detect makes the one vendor
call the gateway makes (the same multipart request built by the same vendor module, sent by
the same transport, the reply parsed by the same parser) and nothing else: no validation,
authentication, limits, breaker, retries, metrics or logging. No gateway built on grpc.aio
and aiohttp can cost less per call than the floor; the gateway minus the floor is what its
own policy costs.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import aiohttp
import grpc
from liveness.v1 import liveness_pb2
from liveness_gateway import wire
from liveness_gateway.config import VendorConfig
from liveness_gateway.server import server_options
from liveness_gateway.transport import VendorTransport, new_session
from liveness_gateway.validation import Source
from liveness_gateway.vendors import linkface
from liveness_gateway.wire import Received

_REPLY = liveness_pb2.DetectResponse(
    score=0.5,
    verdict=liveness_pb2.VERDICT_LIVE,
    threshold=0.98,
    liveness_data_id="LD0123456789abcdef0123456789ab",
    vendor_request_id="TID0123456789abcdef0123456789abcdef",
)


class _DetectOnly:
    """Detect is the benchmark's one RPC; registered like the gateway's servicer (its
    deserializers, so the same copies of the payload are made or avoided)."""

    async def Upload(self, request: Received[Any], context: grpc.aio.ServicerContext) -> None:  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not benchmarked")

    async def AntiHack(self, request: Received[Any], context: grpc.aio.ServicerContext) -> None:  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not benchmarked")


class NoopServicer(_DetectOnly):
    async def Detect(  # noqa: N802
        self, request: Received[liveness_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        return _REPLY


class FloorServicer(_DetectOnly):
    def __init__(self, vendor: VendorConfig, transport: VendorTransport) -> None:
        self._vendor = vendor
        self._transport = transport

    async def Detect(  # noqa: N802
        self, request: Received[liveness_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        assert request.liveness_data is not None
        vendor_request = linkface.DETECT.build(
            self._vendor, Source("data", data=request.liveness_data)
        )
        reply = await self._transport.send(
            vendor_request, timeout_s=self._vendor.timeout_s, caller_bound=False
        )
        result = linkface.DETECT.parse(reply)
        return liveness_pb2.DetectResponse(
            score=result.score,
            liveness_data_id=result.liveness_data_id,
            vendor_request_id=result.request_id,
        )


async def start(
    port: int, vendor: VendorConfig | None = None
) -> tuple[grpc.aio.Server, int, aiohttp.ClientSession | None]:
    """The ceiling (no ``vendor``) or the floor, started on ``port`` (0: any free one); the
    floor's vendor session is returned for the caller to close."""
    server = grpc.aio.server(options=server_options())
    servicer: _DetectOnly = NoopServicer()
    session = None
    if vendor is not None:
        session = new_session()
        transport = VendorTransport(session)
        servicer = FloorServicer(vendor, transport)
    wire.add_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound, session


async def serve(port: int, vendor_url: str | None) -> None:
    vendor = None
    if vendor_url is not None:
        env = os.environ
        vendor = VendorConfig(
            "linkface", vendor_url, env["LINKFACE_API_ID"], env["LINKFACE_API_SECRET"]
        )
    server, _, session = await start(port, vendor)
    try:
        await server.wait_for_termination()
    finally:
        if session is not None:
            await session.close()


if __name__ == "__main__":
    if os.environ.get("BENCH_UVLOOP") == "1":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))
