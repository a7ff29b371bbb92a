"""Every vendor failure arrives as a well-formed status: code AND ErrorInfo reason."""

from __future__ import annotations

import socket

import grpc
import pytest
from google.rpc import error_details_pb2
from liveness.v1 import liveness_pb2 as pb
from liveness_gateway.errors import VENDOR_STATUS_TABLE
from liveness_gateway.sandbox import RunningSandbox
from liveness_gateway.sandbox.app import PAGE_HTTP_STATUS

from tests.conftest import GatewayFactory
from tests.status import Failure, failure_of

C = grpc.StatusCode

# The README's table, restated independently of the code's table.
EXPECTED = {
    "INVALID_ARGUMENT": C.INVALID_ARGUMENT,
    "ENCODING_ERROR": C.INVALID_ARGUMENT,
    "WRONG_LIVENESS_DATA": C.INVALID_ARGUMENT,
    "NO_FACE_DETECTED": C.INVALID_ARGUMENT,
    "DETETION_FAILED": C.INVALID_ARGUMENT,
    "DETECTION_FAILED": C.INVALID_ARGUMENT,
    "DOWNLOAD_ERROR": C.INVALID_ARGUMENT,
    "DOWNLOAD_TIMEOUT": C.UNAVAILABLE,
    "UNAUTHORIZED": C.INTERNAL,
    "KEY_EXPIRED": C.INTERNAL,
    "NO_PERMISSION": C.INTERNAL,
    "NOT_FOUND": C.INTERNAL,
    "RATE_LIMIT_EXCEEDED": C.RESOURCE_EXHAUSTED,
    "OUT_OF_QUOTA": C.RESOURCE_EXHAUSTED,
    "INTERNAL_ERROR": C.UNAVAILABLE,
}


def test_expected_table_covers_every_documented_status() -> None:
    assert set(EXPECTED) == set(VENDOR_STATUS_TABLE)


async def _fail(stub, rpc: str, data: bytes) -> Failure:
    request = {"Detect": pb.DetectRequest, "Upload": pb.UploadRequest}.get(rpc, pb.AntiHackRequest)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request(liveness_data=data))
    return failure_of(caught.value)


@pytest.mark.parametrize("rpc", ["Upload", "Detect", "AntiHack"])
@pytest.mark.parametrize("status", sorted(EXPECTED))
async def test_vendor_status_maps_to_code_and_reason(stub, rpc: str, status: str) -> None:
    failure = await _fail(stub, rpc, f"SANDBOX:status={status}".encode())
    assert failure.code == EXPECTED[status]
    assert failure.info.reason == status
    vendor = "accuauth" if rpc == "AntiHack" else "linkface"
    assert failure.info.metadata["vendor"] == vendor
    # The sandbox answers with the pages' HTTP status (400 for the corrected spelling).
    assert failure.info.metadata["httpStatus"] == str(PAGE_HTTP_STATUS.get(status, 400))
    assert failure.info.metadata["vendorRequestId"].startswith("TID")
    assert failure.info.metadata["vendorReason"] == f"sandbox vector asked for {status}"
    quota = failure.detail(error_details_pb2.QuotaFailure)
    retry = failure.detail(error_details_pb2.RetryInfo)
    if status == "RATE_LIMIT_EXCEEDED":
        assert quota is not None
        assert retry is not None
    elif status == "OUT_OF_QUOTA":
        assert quota is not None
        assert retry is None
    else:
        assert quota is None
        assert retry is None


async def test_rate_limit_honours_retry_after(stub) -> None:
    failure = await _fail(stub, "Detect", b"SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=7")
    assert failure.retry_delay_s == pytest.approx(7.0)


async def test_http_429_without_body(stub) -> None:
    failure = await _fail(stub, "Detect", b"SANDBOX:http=429;retry_after=3")
    assert failure.code == C.RESOURCE_EXHAUSTED
    assert failure.info.reason == "RATE_LIMIT_EXCEEDED"
    assert failure.info.metadata["httpStatus"] == "429"
    assert failure.retry_delay_s == pytest.approx(3.0)
    assert failure.detail(error_details_pb2.QuotaFailure) is not None


@pytest.mark.parametrize("http", [500, 502, 503, 504])
@pytest.mark.parametrize("body", ["html", "empty", "garbage"])
async def test_5xx_without_vendor_status_is_unavailable(stub, http: int, body: str) -> None:
    failure = await _fail(stub, "Detect", f"SANDBOX:http={http};body={body}".encode())
    assert failure.code == C.UNAVAILABLE
    assert failure.info.reason == "VENDOR_HTTP_ERROR"
    assert failure.info.metadata["httpStatus"] == str(http)
    assert "<html" not in failure.message


@pytest.mark.parametrize("body", ["garbage", "empty", "not_object", "nested", "truncated"])
async def test_unusable_200_body_is_unavailable(stub, body: str) -> None:
    failure = await _fail(stub, "AntiHack", f"SANDBOX:body={body}".encode())
    assert failure.code == C.UNAVAILABLE
    assert failure.info.reason == "VENDOR_BAD_REPLY"


async def test_connection_dropped_is_unavailable(stub) -> None:
    failure = await _fail(stub, "Detect", b"SANDBOX:drop=1")
    assert failure.code == C.UNAVAILABLE
    assert failure.info.reason in ("VENDOR_UNREACHABLE", "VENDOR_BAD_REPLY")


async def test_connection_refused_is_unavailable(make_stub: GatewayFactory) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stub = await make_stub(linkface={"base_url": f"http://127.0.0.1:{port}"})
    failure = await _fail(stub, "Detect", b"x")
    assert failure.code == C.UNAVAILABLE
    assert failure.info.reason == "VENDOR_UNREACHABLE"
    assert failure.info.metadata["vendor"] == "linkface"


async def test_vendor_timeout_with_caller_time_left_is_unavailable(
    make_stub: GatewayFactory,
) -> None:
    stub = await make_stub(linkface_timeout_s=0.2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:delay_ms=1500"), timeout=5)
    failure = failure_of(caught.value)
    assert failure.code == C.UNAVAILABLE
    assert failure.info.reason == "VENDOR_TIMEOUT"


async def test_caller_deadline_is_deadline_exceeded(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:delay_ms=1500"), timeout=0.5)
    assert caught.value.code() == C.DEADLINE_EXCEEDED


async def test_wrong_gateway_credentials_are_internal_not_the_callers_fault(
    make_stub: GatewayFactory, sandbox: RunningSandbox
) -> None:
    stub = await make_stub(linkface={"api_secret": "wrong-secret"}, accuauth={"api_id": "wrong-id"})
    for rpc in ("Detect", "AntiHack"):
        failure = await _fail(stub, rpc, b"x")
        assert failure.code == C.INTERNAL
        assert failure.info.reason == "UNAUTHORIZED"
        assert failure.info.metadata["httpStatus"] == "401"


async def test_wrong_vendor_path_is_internal_not_found(
    make_stub: GatewayFactory, sandbox: RunningSandbox
) -> None:
    stub = await make_stub(accuauth={"base_url": sandbox.url + "/v2"})
    failure = await _fail(stub, "AntiHack", b"x")
    assert failure.code == C.INTERNAL
    assert failure.info.reason == "NOT_FOUND"
    assert failure.info.metadata["httpStatus"] == "404"


async def test_undocumented_vendor_status(stub) -> None:
    failure = await _fail(stub, "Detect", b"SANDBOX:status=BRAND_NEW_ERROR;http=503")
    assert failure.code == C.UNAVAILABLE
    assert failure.info.reason == "VENDOR_UNKNOWN_STATUS"  # the catalogue is closed
    assert failure.info.metadata["vendorStatus"] == "BRAND_NEW_ERROR"


async def test_invalid_base64_image_drops_the_image_not_the_score(gateway, stub) -> None:
    def dropped() -> float | None:
        return gateway.metrics.registry.get_sample_value(
            "liveness_gateway_vendor_images_dropped_total",
            {"vendor": "accuauth", "reason": "invalid"},
        )

    assert dropped() == 0
    reply = await stub.AntiHack(
        pb.AntiHackRequest(liveness_data=b"SANDBOX:image=invalid;score=0.3", return_image=True)
    )
    assert reply.score == pytest.approx(0.3)
    assert reply.image == b""
    assert dropped() == 1


@pytest.mark.parametrize("sandbox", [{"download_timeout_s": 0.3}], indirect=True, ids=["0.3 s"])
async def test_url_download_failures(stub, file_server) -> None:
    missing = file_server.url + "/missing"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data_url=missing))
    failure = failure_of(caught.value)
    assert (failure.code, failure.info.reason) == (C.INVALID_ARGUMENT, "DOWNLOAD_ERROR")

    slow = file_server.add("slow", b"data", delay_s=2.0)  # the sandbox's limit here is 0.3 s
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data_url=slow))
    failure = failure_of(caught.value)
    assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "DOWNLOAD_TIMEOUT")


async def test_no_secret_or_exception_text_reaches_the_caller(
    make_stub: GatewayFactory, sandbox: RunningSandbox
) -> None:
    stub = await make_stub(linkface={"api_secret": "canary-secret-value"})
    failure = await _fail(stub, "Detect", b"x")
    rendered = failure.status.SerializeToString()
    assert b"canary-secret-value" not in rendered
    assert b"Traceback" not in rendered
    assert sandbox.config.linkface.api_secret.encode() not in rendered


async def test_per_endpoint_default_timeout(make_stub: GatewayFactory) -> None:
    stub = await make_stub(
        linkface={"timeout_s": 5.0, "endpoint_timeouts_s": {"upload_liveness_data": 0.3}}
    )
    slow = b"SANDBOX:score=0.4;delay_ms=500"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Upload(pb.UploadRequest(liveness_data=slow))
    failure = failure_of(caught.value)
    assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "VENDOR_TIMEOUT")
    reply = await stub.Detect(pb.DetectRequest(liveness_data=slow))  # detect keeps its 5 s
    assert reply.score == pytest.approx(0.4)
