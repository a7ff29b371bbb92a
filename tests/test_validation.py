"""Validation happens before any vendor quota is spent: the sandbox sees no request."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from liveness.v1 import liveness_pb2 as pb
from liveness_gateway.config import MAX_LIVENESS_BYTES
from liveness_gateway.sandbox import RunningSandbox

from tests.status import failure_of

FIVE_MB = MAX_LIVENESS_BYTES
LONG_URL = "http://example.test/" + "a" * 2048

CASES = [
    ("Detect", pb.DetectRequest(), "source"),
    ("Detect", pb.DetectRequest(liveness_data=b""), "liveness_data"),
    ("Detect", pb.DetectRequest(liveness_data_url=""), "liveness_data_url"),
    ("Detect", pb.DetectRequest(liveness_data_url="ftp://host/file"), "liveness_data_url"),
    ("Detect", pb.DetectRequest(liveness_data_url="/relative/path"), "liveness_data_url"),
    ("Detect", pb.DetectRequest(liveness_data_url="file:///etc/passwd"), "liveness_data_url"),
    ("Detect", pb.DetectRequest(liveness_data_url="http://u:p@host/x"), "liveness_data_url"),
    ("Detect", pb.DetectRequest(liveness_data_url="http:///nohost"), "liveness_data_url"),
    ("Detect", pb.DetectRequest(liveness_data_url="http://h/a b"), "liveness_data_url"),
    ("Detect", pb.DetectRequest(liveness_data_url=LONG_URL), "liveness_data_url"),
    ("Detect", pb.DetectRequest(liveness_data_id=""), "liveness_data_id"),
    ("Detect", pb.DetectRequest(liveness_data_id="   "), "liveness_data_id"),
    ("Detect", pb.DetectRequest(liveness_data_id="a\nb"), "liveness_data_id"),
    ("Detect", pb.DetectRequest(liveness_data_id="i" * 257), "liveness_data_id"),
    ("Detect", pb.DetectRequest(liveness_data_url="http://h/\x00"), "liveness_data_url"),
    ("AntiHack", pb.AntiHackRequest(image_id="\u202eevil"), "image_id"),
    ("Upload", pb.UploadRequest(), "source"),
    ("Upload", pb.UploadRequest(liveness_data=b""), "liveness_data"),
    ("Upload", pb.UploadRequest(liveness_data_url="gopher://x"), "liveness_data_url"),
    ("AntiHack", pb.AntiHackRequest(), "source"),
    ("AntiHack", pb.AntiHackRequest(liveness_data=b""), "liveness_data"),
    ("AntiHack", pb.AntiHackRequest(image_id=""), "image_id"),
]


@pytest.mark.parametrize(("rpc", "request_", "field"), CASES)
async def test_invalid_request_reaches_no_vendor(
    stub, sandbox: RunningSandbox, rpc: str, request_, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request_)
    failure = failure_of(caught.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.info.reason == "INVALID_REQUEST"
    bad = failure.detail(error_details_pb2.BadRequest)
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == [field]
    assert field in failure.message
    assert sandbox.state.total() == 0


@pytest.mark.parametrize("rpc", ["Detect", "Upload", "AntiHack"])
async def test_five_megabytes_accepted_one_byte_more_refused(
    stub, sandbox: RunningSandbox, rpc: str
) -> None:
    request_type = {"Detect": pb.DetectRequest, "Upload": pb.UploadRequest}.get(
        rpc, pb.AntiHackRequest
    )
    payload = b"SANDBOX:score=0.5\n"
    exact = payload + b"x" * (FIVE_MB - len(payload))
    assert len(exact) == FIVE_MB
    await getattr(stub, rpc)(request_type(liveness_data=exact))
    assert sandbox.state.total() == 1

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request_type(liveness_data=exact + b"x"))
    failure = failure_of(caught.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    bad = failure.detail(error_details_pb2.BadRequest)
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert bad.field_violations[0].field == "liveness_data"
    assert str(FIVE_MB + 1) in bad.field_violations[0].description
    assert sandbox.state.total() == 1


async def test_url_of_exactly_2048_chars_is_accepted(stub, sandbox: RunningSandbox) -> None:
    url = "http://127.0.0.1:9/" + "a" * (2048 - len("http://127.0.0.1:9/"))
    assert len(url) == 2048
    # Validation passes; the vendor then fails to download it (nothing listens on port 9).
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data_url=url))
    assert failure_of(caught.value).info.reason == "DOWNLOAD_ERROR"
    assert sandbox.state.total() == 1
