"""Both readings of the vendor pages: the sandbox is set to the other reading of each ambiguity,
and the gateway still gets the verdict (or says clearly whose fault it is).

One test per tolerance item of the vendor layer; the readings are documented in the README
("Where the vendor pages disagree").
"""

from __future__ import annotations

import base64

import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1.liveness_pb2_grpc import LivenessCheckStub
from liveness_gateway.config import ResilienceConfig
from liveness_gateway.sandbox.app import IMAGE_ENCODINGS

from tests.conftest import CHANNEL_OPTIONS
from tests.status import failure_of

C = grpc.StatusCode
DETECT_PART = {"liveness_hack_detect": "file"}
FACE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


def vendor_errors(gateway, status: str) -> float | None:
    return gateway.metrics.registry.get_sample_value(
        "liveness_gateway_vendor_errors_total",
        {"vendor": "linkface", "endpoint": "liveness_hack_detect", "status": status},
    )


@pytest.mark.parametrize("sandbox", [{"detect_file_part": "file"}], indirect=True)
async def test_detect_file_part_follows_the_setting(make_gateway) -> None:
    """The samples' reading: the vendor wants ``file``. With the table's part the gateway
    says it is its own fault (INTERNAL, held against the vendor), not the caller's."""
    request = pb.DetectRequest(liveness_data=b"SANDBOX:score=0.42")
    table = await make_gateway()
    async with grpc.aio.insecure_channel(table.address, options=CHANNEL_OPTIONS) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await LivenessCheckStub(channel).Detect(request)
    failure = failure_of(caught.value)
    assert (failure.code, failure.info.reason) == (C.INTERNAL, "VENDOR_REQUEST_REJECTED")
    assert "'file'" in failure.info.metadata["vendorReason"]  # what this vendor wants
    assert vendor_errors(table, "VENDOR_REQUEST_REJECTED") == 1
    samples = await make_gateway(linkface={"file_parts": DETECT_PART})
    async with grpc.aio.insecure_channel(samples.address, options=CHANNEL_OPTIONS) as channel:
        reply = await LivenessCheckStub(channel).Detect(request)
    assert reply.score == pytest.approx(0.42)


@pytest.mark.parametrize("sandbox", [{"detect_file_part": "file"}], indirect=True)
async def test_a_misread_part_opens_the_breaker_not_blames_the_caller(make_stub) -> None:
    stub = await make_stub(resilience=ResilienceConfig(breaker_failures=2))
    request = pb.DetectRequest(liveness_data=b"SANDBOX:score=0.42")
    reasons = []
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Detect(request)
        reasons.append(failure_of(caught.value).info.reason)
    assert reasons == ["VENDOR_REQUEST_REJECTED", "VENDOR_REQUEST_REJECTED", "CIRCUIT_OPEN"]


@pytest.mark.parametrize(
    "sandbox", [{"image_encoding": e} for e in IMAGE_ENCODINGS], indirect=True, ids=IMAGE_ENCODINGS
)
async def test_every_common_base64_form_of_the_image(stub, sandbox) -> None:
    reply = await stub.AntiHack(
        pb.AntiHackRequest(liveness_data=b"SANDBOX:score=0.1", return_image=True)
    )
    assert reply.image == FACE_PNG
    assert reply.score == pytest.approx(0.1)


@pytest.mark.parametrize("sandbox", [{"image_encoding": "wrapped"}], indirect=True)
async def test_the_image_is_decoded_only_when_asked_for(gateway, stub) -> None:
    reply = await stub.AntiHack(pb.AntiHackRequest(liveness_data=b"SANDBOX:image=invalid"))
    assert reply.image == b""
    dropped = gateway.metrics.registry.get_sample_value(
        "liveness_gateway_vendor_images_dropped_total", {"vendor": "accuauth", "reason": "invalid"}
    )
    assert dropped == 0  # not asked for: not even looked at


@pytest.mark.parametrize("sandbox", [{"extra_bools": True}], indirect=True)
async def test_bool_extras_arrive_as_one_or_zero(stub) -> None:
    live = await stub.AntiHack(
        pb.AntiHackRequest(liveness_data=b"SANDBOX:score=0.1", return_extra=True)
    )
    assert live.extra.HasField("face_quality_score")
    assert live.extra.face_quality_score == 1.0
    assert live.extra.live_proba == 1.0
    hack = await stub.AntiHack(
        pb.AntiHackRequest(liveness_data=b"SANDBOX:score=0.99", return_extra=True)
    )
    assert hack.extra.HasField("live_proba")
    assert hack.extra.live_proba == 0.0


@pytest.mark.parametrize("status", ["DETETION_FAILED", "DETECTION_FAILED"])
async def test_detection_failed_in_either_spelling(stub, status: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AntiHack(pb.AntiHackRequest(liveness_data=f"SANDBOX:status={status}".encode()))
    failure = failure_of(caught.value)
    assert (failure.code, failure.info.reason) == (C.INVALID_ARGUMENT, status)


async def test_no_face_detail_is_kept_as_metadata(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:status=NO_FACE_DETECTED"))
    meta = failure_of(caught.value).info.metadata
    assert meta["vendorDetail"] == "no face in any frame of the liveness data"
    assert meta["vendorReason"] == "sandbox vector asked for NO_FACE_DETECTED"


async def test_ids_as_long_as_callers_may_send_come_back_whole(stub) -> None:
    long_id = "SANDBOX:score=0.3;pad=" + "x" * (256 - len("SANDBOX:score=0.3;pad="))
    assert len(long_id) == 256
    reply = await stub.Detect(pb.DetectRequest(liveness_data_id=long_id))
    assert reply.liveness_data_id == long_id
