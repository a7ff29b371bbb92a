"""Each RPC with each source kind, end to end over loopback, and the vendors' quirks."""

from __future__ import annotations

import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.sandbox import RunningSandbox
from liveness_gateway.sandbox.vectors import default_score

from tests.conftest import CHANNEL_OPTIONS, FileServer, GatewayFactory

LIVE, HACK = pb.VERDICT_LIVE, pb.VERDICT_HACK


async def test_detect_with_bytes_returns_vector_score_and_hack_verdict(stub, sandbox) -> None:
    reply = await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.995"))
    assert reply.score == pytest.approx(0.995)
    assert reply.verdict == HACK
    assert reply.threshold == pytest.approx(0.98)
    assert reply.liveness_data_id.startswith("LD")
    assert reply.vendor_request_id.startswith("TID")
    assert sandbox.state.requests["/hackness/liveness_hack_detect"] == 1


@pytest.mark.parametrize(
    ("score", "verdict"), [(0.98, LIVE), (0.9801, HACK), (0.0, LIVE), (1.0, HACK)]
)
async def test_verdict_is_hack_only_above_threshold(stub, score: float, verdict: int) -> None:
    reply = await stub.Detect(pb.DetectRequest(liveness_data=f"SANDBOX:score={score}".encode()))
    assert reply.score == pytest.approx(score)
    assert reply.verdict == verdict


async def test_ordinary_bytes_score_deterministically(stub) -> None:
    data = b"\x08\x01encrypted-liveness-blob"
    first = await stub.Detect(pb.DetectRequest(liveness_data=data))
    second = await stub.Detect(pb.DetectRequest(liveness_data=data))
    assert first.score == second.score == pytest.approx(default_score(data))


async def test_detect_with_url(stub, file_server: FileServer, sandbox) -> None:
    url = file_server.add("blob", b"SANDBOX:score=0.25")
    reply = await stub.Detect(pb.DetectRequest(liveness_data_url=url))
    assert reply.score == pytest.approx(0.25)
    assert reply.verdict == LIVE


async def test_upload_bytes_then_detect_by_id(stub, sandbox) -> None:
    uploaded = await stub.Upload(pb.UploadRequest(liveness_data=b"SANDBOX:score=0.991"))
    assert uploaded.liveness_data_id
    assert uploaded.vendor_request_id.startswith("TID")
    reply = await stub.Detect(pb.DetectRequest(liveness_data_id=uploaded.liveness_data_id))
    assert reply.score == pytest.approx(0.991)
    assert reply.verdict == HACK
    assert reply.liveness_data_id == uploaded.liveness_data_id
    assert sandbox.state.requests["/resources/upload_liveness_data"] == 1


async def test_upload_url(stub, file_server: FileServer) -> None:
    url = file_server.add("up", b"some liveness bytes")
    uploaded = await stub.Upload(pb.UploadRequest(liveness_data_url=url))
    reply = await stub.Detect(pb.DetectRequest(liveness_data_id=uploaded.liveness_data_id))
    assert reply.score == pytest.approx(default_score(b"some liveness bytes"))


async def test_antihack_with_bytes_image_and_extra(stub, sandbox) -> None:
    reply = await stub.AntiHack(
        pb.AntiHackRequest(
            liveness_data=b"SANDBOX:score=0.13119", return_image=True, return_extra=True
        )
    )
    assert reply.score == pytest.approx(0.13119)
    assert reply.verdict == LIVE
    assert reply.image.startswith(b"\x89PNG")
    assert reply.HasField("extra")
    assert reply.extra.HasField("is_live")
    assert reply.extra.is_live is True
    # Documented as bool, sent as float: arrives as the float.
    assert reply.extra.live_proba == pytest.approx(1 - 0.13119)
    assert reply.extra.face_quality_score == pytest.approx(0.9981434181918459)
    # false is present, and differs from absent
    assert reply.extra.HasField("masked")
    assert reply.extra.masked is False
    assert sandbox.state.requests["/face/liveness_anti_hack"] == 1


async def test_antihack_without_flags_has_no_image_or_extra(stub) -> None:
    reply = await stub.AntiHack(pb.AntiHackRequest(liveness_data=b"SANDBOX:score=0.99"))
    assert reply.verdict == HACK
    assert reply.image == b""
    assert not reply.HasField("extra")


async def test_antihack_with_image_id(stub) -> None:
    reply = await stub.AntiHack(pb.AntiHackRequest(image_id="h5-image-123"))
    assert reply.score == pytest.approx(default_score(b"h5-image-123"))
    vector = await stub.AntiHack(pb.AntiHackRequest(image_id="SANDBOX:score=0.5"))
    assert vector.score == pytest.approx(0.5)


async def test_thresholds_are_operator_configuration(make_stub: GatewayFactory) -> None:
    stub = await make_stub(detect_threshold=0.5, antihack_threshold=0.9)
    detect = await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.6"))
    assert (detect.threshold, detect.verdict) == (pytest.approx(0.5), HACK)
    anti = await stub.AntiHack(pb.AntiHackRequest(liveness_data=b"SANDBOX:score=0.6"))
    assert (anti.threshold, anti.verdict) == (pytest.approx(0.9), LIVE)


# --- quirks the vendors document -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["string", "number"])
async def test_score_as_string_or_number(stub, fmt: str) -> None:
    reply = await stub.Detect(
        pb.DetectRequest(liveness_data=f"SANDBOX:score=0.42;score_format={fmt}".encode())
    )
    assert reply.score == pytest.approx(0.42)


@pytest.mark.parametrize("key", ["image_id", "liveness_data_id"])
async def test_upload_id_under_either_key(stub, sandbox: RunningSandbox, key: str) -> None:
    uploaded = await stub.Upload(pb.UploadRequest(liveness_data=f"SANDBOX:id_key={key}".encode()))
    assert uploaded.liveness_data_id in sandbox.state.stored


async def test_vector_padding_keeps_the_vector(stub) -> None:
    data = b"SANDBOX:score=0.3\n" + bytes(range(256)) * 100
    reply = await stub.Detect(pb.DetectRequest(liveness_data=data))
    assert reply.score == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ("0.9", pb.VERDICT_LIVE),
        ("0.975", pb.VERDICT_REVIEW),
        ("0.98", pb.VERDICT_REVIEW),
        ("0.985", pb.VERDICT_REVIEW),
        ("0.999", pb.VERDICT_HACK),
    ],
)
async def test_review_band_around_the_threshold(make_gateway, score: str, expected) -> None:
    gateway = await make_gateway(detect_review_band=0.01, antihack_review_band=0.01)
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        data = f"SANDBOX:score={score}".encode()
        detect = await stub.Detect(pb.DetectRequest(liveness_data=data))
        anti = await stub.AntiHack(pb.AntiHackRequest(liveness_data=data))
    assert (detect.verdict, anti.verdict) == (expected, expected)
    name = {pb.VERDICT_LIVE: "live", pb.VERDICT_HACK: "hack", pb.VERDICT_REVIEW: "review"}
    counted = gateway.metrics.registry.get_sample_value(
        "liveness_gateway_verdicts_total", {"rpc": "Detect", "verdict": name[expected]}
    )
    assert counted == 1


async def test_no_review_band_by_default(stub) -> None:
    reply = await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.9801"))
    assert reply.verdict == pb.VERDICT_HACK
