"""A canary secret, every error path driven, and no trace of it anywhere a caller or an
operator could see: status messages, status details, log lines, /metrics, exported spans."""

from __future__ import annotations

import logging
import secrets
import socket

import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.config import TracingConfig
from liveness_gateway.errors import VENDOR_STATUS_TABLE
from liveness_gateway.logs import JsonFormatter, TextFormatter
from liveness_gateway.sandbox import Credentials, SandboxConfig

from tests.conftest import CHANNEL_OPTIONS
from tests.metrics_text import scrape
from tests.otel_collector import CLIENT, SERVER, Collector

CANARY = "CANARY" + secrets.token_hex(12)

VECTORS = [
    *(f"SANDBOX:status={s}" for s in VENDOR_STATUS_TABLE),
    "SANDBOX:status=UNDOCUMENTED_THING",
    "SANDBOX:http=429;retry_after=2",
    *(f"SANDBOX:http={c}" for c in (500, 502, 503, 504, 418)),
    *(
        f"SANDBOX:body={b}"
        for b in ("empty", "html", "garbage", "truncated", "nested", "not_object")
    ),
    "SANDBOX:drop=1",
    "SANDBOX:delay_ms=600",  # beyond the vendor timeout below
    "SANDBOX:image=invalid",
    "SANDBOX:score=0.5",
    "SANDBOX:unknown_key=1",
]


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """The sandbox (and so every gateway in front of it) holds the canary as its secret."""
    creds = Credentials("canary-id", CANARY)
    return SandboxConfig(creds, creds, download_timeout_s=0.3)


async def test_canary_secret_never_leaks(
    caplog: pytest.LogCaptureFixture, make_gateway, file_server, collector: Collector
) -> None:
    caplog.set_level(logging.DEBUG)
    traced = TracingConfig(collector.endpoint)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    # Every gateway exports its spans: they are searched too.
    gateways = [
        await make_gateway(linkface_timeout_s=0.3, accuauth_timeout_s=0.3, tracing=traced),
        # wrong id with the canary secret: the vendor answers UNAUTHORIZED
        await make_gateway(linkface={"api_id": "x"}, accuauth={"api_id": "x"}, tracing=traced),
        # nobody listening
        await make_gateway(
            linkface={"base_url": f"http://127.0.0.1:{closed_port}"},
            accuauth={"base_url": f"http://127.0.0.1:{closed_port}"},
            tracing=traced,
        ),
    ]
    assert all(g.config.linkface.api_secret == CANARY for g in gateways)
    rpcs = 0
    seen: list[str] = []
    slow_url = file_server.add("slow", b"x", delay_s=1.0)
    for gateway in gateways:
        async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as ch:
            stub = liveness_pb2_grpc.LivenessCheckStub(ch)
            requests = [(stub.Detect, pb.DetectRequest(liveness_data=v.encode())) for v in VECTORS]
            requests += [
                (stub.AntiHack, pb.AntiHackRequest(liveness_data=v.encode(), return_image=True))
                for v in VECTORS
            ]
            requests += [(stub.Upload, pb.UploadRequest(liveness_data=v.encode())) for v in VECTORS]
            requests += [
                (stub.Detect, pb.DetectRequest()),
                (stub.Detect, pb.DetectRequest(liveness_data_url="ftp://x")),
                (stub.Detect, pb.DetectRequest(liveness_data_url=slow_url)),
                (stub.Detect, pb.DetectRequest(liveness_data_url=file_server.url + "/no")),
                (stub.Detect, pb.DetectRequest(liveness_data_id="unknown")),
                (stub.AntiHack, pb.AntiHackRequest(image_id="")),
                (stub.Upload, pb.UploadRequest(liveness_data=b"x" * (5 * 1024 * 1024 + 1))),
            ]
            rpcs += len(requests)
            for method, request in requests:
                call = method(request, timeout=5)
                try:
                    await call
                except grpc.aio.AioRpcError as err:
                    seen.append(err.details() or "")
                    seen.extend(repr(v) for _, v in err.trailing_metadata() or ())
                seen.extend(repr(v) for _, v in await call.trailing_metadata() or ())
        assert gateway.metrics_port
        seen.append(await scrape(gateway.metrics_port))
        await gateway.stop(0)  # exports the spans left; what it logs while stopping is searched
    assert len(seen) > 3 * len(VECTORS) * 3
    spans = await collector.wait_for(
        lambda spans: len([s for s in spans if s["kind"] == SERVER]) >= rpcs
    )
    assert [s for s in spans if s["kind"] == CLIENT], "no vendor attempt was traced"
    seen.append(collector.raw())
    json_fmt, text_fmt = JsonFormatter(), TextFormatter()
    for record in caplog.records:
        seen.append(json_fmt.format(record))
        seen.append(text_fmt.format(record))
    assert caplog.records, "the gateway logged nothing: the log check would be empty"
    leaks = [s for s in seen if CANARY in s]
    assert leaks == []
