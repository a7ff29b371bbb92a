"""The two limits the gateway is measured against, with its message types and server options.

``noop_server.py PORT``: the **ceiling**, a grpc.aio server whose Detect does nothing but
answer. ``noop_server.py PORT VENDOR_URL``: the **floor**, whose Detect makes the plainest
vendor call there is with aiohttp: the multipart form the gateway sends, joined into one
``bytes`` object, POSTed on a default ``aiohttp.ClientSession``, the reply read whole and
its score taken; no validation, authentication, limits, breaker, retries, timeouts of its
own, metrics or logging, and none of the gateway's transport. No gateway built on grpc.aio
and aiohttp's client can cost less per call than the floor; the gateway minus the floor is
what its policy and its transport cost (its transport, ``http1.py``, is not aiohttp's).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import aiohttp
import grpc
import orjson
from liveness.v1 import liveness_pb2
from liveness_gateway import wire
from liveness_gateway.config import VendorConfig
from liveness_gateway.server import server_options
from liveness_gateway.wire import Received

_REPLY = liveness_pb2.DetectResponse(
    score=0.5,
    verdict=liveness_pb2.VERDICT_LIVE,
    threshold=0.98,
    liveness_data_id="LD0123456789abcdef0123456789ab",
    vendor_request_id="TID0123456789abcdef0123456789abcdef",
)
_DETECT_PATH = "/hackness/liveness_hack_detect"
_BOUNDARY = "floorboundary5be1c2"


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


def form_head(vendor: VendorConfig, boundary: str) -> bytes:
    """Everything of LinkFace's detect form before the liveness data."""
    dash = f"--{boundary}\r\n"
    return (
        f'{dash}Content-Disposition: form-data; name="api_id"\r\n\r\n{vendor.api_id}\r\n'
        f'{dash}Content-Disposition: form-data; name="api_secret"\r\n\r\n'
        f"{vendor.api_secret}\r\n{dash}Content-Type: application/octet-stream\r\n"
        'Content-Disposition: form-data; name="liveness_data_file"; '
        'filename="liveness_data"\r\n\r\n'
    ).encode()


class FloorServicer(_DetectOnly):
    def __init__(self, vendor: VendorConfig, session: aiohttp.ClientSession) -> None:
        self._url = vendor.base_url + _DETECT_PATH
        self._session = session
        self._head = form_head(vendor, _BOUNDARY)
        self._tail = f"\r\n--{_BOUNDARY}--\r\n".encode()
        self._content_type = f"multipart/form-data; boundary={_BOUNDARY}"

    async def Detect(  # noqa: N802
        self, request: Received[liveness_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        assert request.liveness_data is not None
        body = b"".join((self._head, request.liveness_data, self._tail))
        async with self._session.post(
            self._url, data=body, headers={"Content-Type": self._content_type}
        ) as resp:
            reply = orjson.loads(await resp.read())
        return liveness_pb2.DetectResponse(
            score=float(reply["score"]),
            liveness_data_id=reply.get("liveness_data_id", ""),
            vendor_request_id=reply.get("request_id", ""),
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
        session = aiohttp.ClientSession()
        servicer = FloorServicer(vendor, session)
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
