"""The async client against the real gateway and its sandbox: every RPC, every source kind."""

from __future__ import annotations

import dataclasses

import pytest

from liveness_client import (
    AntiHackResult,
    AsyncLivenessClient,
    DetectResult,
    FaceQuality,
    InvalidArgument,
    NotFound,
    UploadResult,
    Verdict,
    is_valid_idempotency_key,
    new_idempotency_key,
)
from liveness_client._proto.liveness.v1 import liveness_pb2 as pb
from tests.conftest import FileServer

HACK = b"SANDBOX:score=0.995"
LIVE = b"SANDBOX:score=0.2"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PAYLOAD_BYTES = 5 * 1024 * 1024


async def test_detect_bytes_scores_a_hack(client: AsyncLivenessClient) -> None:
    result = await client.detect(data=HACK)
    assert isinstance(result, DetectResult)
    assert result.score == 0.995
    assert result.verdict is Verdict.HACK
    assert not result.is_live
    assert result.threshold == 0.98
    assert result.liveness_data_id
    assert result.vendor_request_id.startswith("TID")


async def test_detect_url(client: AsyncLivenessClient, file_server: FileServer) -> None:
    url = file_server.add("live.bin", LIVE)
    result = await client.detect(url=url)
    assert (result.score, result.verdict) == (0.2, Verdict.LIVE)
    assert result.is_live


async def test_upload_then_detect_by_id(client: AsyncLivenessClient) -> None:
    uploaded = await client.upload(data=HACK)
    assert isinstance(uploaded, UploadResult)
    assert uploaded.liveness_data_id
    assert uploaded.vendor_request_id.startswith("TID")
    result = await client.detect(liveness_data_id=uploaded.liveness_data_id)
    assert (result.score, result.verdict) == (0.995, Verdict.HACK)
    assert result.liveness_data_id == uploaded.liveness_data_id


async def test_detect_by_vector_id(client: AsyncLivenessClient) -> None:
    result = await client.detect(liveness_data_id="SANDBOX:score=0.5")
    assert (result.score, result.verdict) == (0.5, Verdict.LIVE)


async def test_upload_url(client: AsyncLivenessClient, file_server: FileServer) -> None:
    uploaded = await client.upload(url=file_server.add("upload.bin", LIVE))
    assert uploaded.liveness_data_id
    result = await client.detect(liveness_data_id=uploaded.liveness_data_id)
    assert result.score == 0.2


async def test_ordinary_bytes_score_deterministically(client: AsyncLivenessClient) -> None:
    first = await client.detect(data=b"an ordinary liveness file")
    second = await client.detect(data=b"an ordinary liveness file")
    assert 0.0 <= first.score <= 1.0
    assert first.score == second.score


async def test_anti_hack_bytes(client: AsyncLivenessClient) -> None:
    result = await client.anti_hack(data=HACK)
    assert isinstance(result, AntiHackResult)
    assert (result.score, result.verdict, result.threshold) == (0.995, Verdict.HACK, 0.98)
    assert result.image is None
    assert result.quality is None
    assert result.vendor_request_id.startswith("TID")


async def test_anti_hack_image_id_with_image_and_quality(client: AsyncLivenessClient) -> None:
    result = await client.anti_hack(
        image_id="SANDBOX:score=0.1", return_image=True, return_extra=True
    )
    assert (result.score, result.verdict) == (0.1, Verdict.LIVE)
    assert result.image is not None
    assert result.image.startswith(PNG_SIGNATURE)
    assert isinstance(result.quality, FaceQuality)
    assert result.quality.mask_proba == 0.001
    assert result.quality.is_live is True
    assert result.quality.masked is False  # present and false, not absent


async def test_results_are_frozen(client: AsyncLivenessClient) -> None:
    result = await client.detect(data=LIVE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.score = 0.0  # type: ignore[misc]


async def test_five_mib_payload_goes_through(client: AsyncLivenessClient) -> None:
    head = b"SANDBOX:score=0.5\n"
    payload = head + b"x" * (MAX_PAYLOAD_BYTES - len(head))
    assert len(payload) == 5 * 1024 * 1024
    result = await client.detect(data=payload)
    assert (result.score, result.verdict) == (0.5, Verdict.LIVE)
    anti = await client.anti_hack(data=payload)
    assert anti.score == 0.5


async def test_one_byte_over_is_refused_by_the_gateway_not_the_transport(
    client: AsyncLivenessClient,
) -> None:
    payload = b"SANDBOX:score=0.5\n".ljust(MAX_PAYLOAD_BYTES + 1, b"x")
    with pytest.raises(InvalidArgument) as caught:
        await client.detect(data=payload)
    assert caught.value.reason == "INVALID_REQUEST"
    assert [v.field for v in caught.value.field_violations] == ["liveness_data"]


async def test_health(client: AsyncLivenessClient) -> None:
    assert await client.health() == "SERVING"
    assert await client.health("liveness.v1.LivenessCheck") == "SERVING"
    with pytest.raises(NotFound):
        await client.health("no.such.Service")


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"data": b"x", "url": "http://example.com/x"}, {"url": "u", "liveness_data_id": "i"}],
)
async def test_exactly_one_source_is_required(
    client: AsyncLivenessClient, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        await client.detect(**kwargs)  # type: ignore[arg-type]


async def test_anti_hack_needs_one_source(client: AsyncLivenessClient) -> None:
    with pytest.raises(ValueError, match="exactly one of data, image_id"):
        await client.anti_hack(data=b"x", image_id="y")


async def test_every_result_and_error_carries_the_gateways_request_id(
    client: AsyncLivenessClient,
) -> None:
    uploaded = await client.upload(data=LIVE, request_id="async-up")
    assert uploaded.request_id == "async-up"
    assert uploaded.to_dict()["request_id"] == "async-up"
    detected = await client.detect(liveness_data_id=uploaded.liveness_data_id, request_id="a-d")
    assert detected.request_id == "a-d"
    hacked = await client.anti_hack(data=HACK, request_id="a-a")
    assert (hacked.request_id, hacked.to_dict()["request_id"]) == ("a-a", "a-a")
    fresh = await client.detect(data=LIVE)
    assert len(fresh.request_id) == 32  # the client's fresh id, as the gateway returned it
    # An id the gateway will not use (too long) is replaced: the result has the gateway's own.
    replaced = await client.detect(data=LIVE, request_id="x" * 200)
    assert len(replaced.request_id) == 32
    with pytest.raises(InvalidArgument) as caught:
        await client.detect(data=b"SANDBOX:status=NO_FACE_DETECTED", request_id="y" * 200)
    assert len(caught.value.request_id) == 32
    assert caught.value.request_id in repr(caught.value)


async def test_a_whole_request_message_is_sent_as_it_is(client: AsyncLivenessClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.detect(request=pb.DetectRequest())  # no source: the gateway refuses it
    assert caught.value.reason == "INVALID_REQUEST"
    result = await client.anti_hack(
        request=pb.AntiHackRequest(liveness_data=HACK, return_extra=True)
    )
    assert result.quality is not None
    with pytest.raises(ValueError, match="exactly one"):
        await client.detect(data=HACK, request=pb.DetectRequest())


async def test_an_upload_sends_an_idempotency_key_and_returns_it(
    client: AsyncLivenessClient,
) -> None:
    uploaded = await client.upload(data=LIVE, request_id="idem-up")
    assert is_valid_idempotency_key(uploaded.idempotency_key)
    assert uploaded.idempotency_key != uploaded.request_id == "idem-up"
    assert uploaded.to_dict()["idempotency_key"] == uploaded.idempotency_key
    mine = new_idempotency_key()
    again = await client.upload(data=LIVE, idempotency_key=mine)
    assert again.idempotency_key == mine
    # One key per request: the same key for another request is refused REQUEST_ID_REUSED.
    keys = new_idempotency_key(), new_idempotency_key()
    detected = await client.detect(liveness_data_id=again.liveness_data_id, idempotency_key=keys[0])
    assert detected.idempotency_key == keys[0]
    plain = await client.anti_hack(data=HACK)
    assert plain.idempotency_key == ""
    with pytest.raises(InvalidArgument) as caught:
        await client.detect(data=b"SANDBOX:status=NO_FACE_DETECTED", idempotency_key=keys[1])
    assert caught.value.idempotency_key == keys[1]
