"""The ceiling: a grpc.aio server with the gateway's message types and server options whose
Detect does nothing but answer. What the gateway adds is measured against this."""

from __future__ import annotations

import asyncio
import os
import sys

import grpc
from liveness.v1 import liveness_pb2, liveness_pb2_grpc
from liveness_gateway.server import server_options

_REPLY = liveness_pb2.DetectResponse(
    score=0.5,
    verdict=liveness_pb2.VERDICT_LIVE,
    threshold=0.98,
    liveness_data_id="LD0123456789abcdef0123456789ab",
    vendor_request_id="TID0123456789abcdef0123456789abcdef",
)


class NoopServicer(liveness_pb2_grpc.LivenessCheckServicer):
    async def Detect(  # noqa: N802
        self, request: liveness_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        return _REPLY


async def serve(port: int) -> None:
    server = grpc.aio.server(options=server_options())
    liveness_pb2_grpc.add_LivenessCheckServicer_to_server(NoopServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    if os.environ.get("BENCH_UVLOOP") == "1":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve(int(sys.argv[1])))
