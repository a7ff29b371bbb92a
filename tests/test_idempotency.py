"""Idempotent calls (AIP-155 request_id) and Upload dedupe, in one gateway process.

The fleet-wide half (two gateway processes, one Redis) is in test_fleet.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.config import StateConfig
from liveness_gateway.sandbox import RunningSandbox
from liveness_gateway.server import RunningGateway
from liveness_gateway.vendors import accuauth, linkface

from tests.conftest import CHANNEL_OPTIONS
from tests.metrics_text import sample, scrape
from tests.status import failure_of

UPLOAD_PATH = linkface.UPLOAD.path
DETECT_PATH = linkface.DETECT.path
ANTI_HACK_PATH = accuauth.ANTI_HACK.path

Factory = Callable[..., Awaitable[RunningGateway]]


async def _open(make_gateway: Factory, **state: object) -> tuple[RunningGateway, grpc.aio.Channel]:
    gateway = await make_gateway(state=StateConfig(**state))  # type: ignore[arg-type]
    return gateway, grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS)


def _rid() -> str:
    return str(uuid.uuid4())


async def test_an_upload_resent_with_its_request_id_reaches_the_vendor_once(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    gateway, channel = await _open(make_gateway, upload_dedupe_ttl_s=0)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        rid = _rid()
        request = pb.UploadRequest(liveness_data=b"SANDBOX:score=0.2\nfirst", request_id=rid)
        first = await stub.Upload(request)
        again = await stub.Upload(request)
        upper = await stub.Upload(
            pb.UploadRequest(liveness_data=b"SANDBOX:score=0.2\nfirst", request_id=rid.upper())
        )
        assert again == first == upper
        assert sandbox.state.requests[UPLOAD_PATH] == 1
        # Without the id the same bytes are a new upload (dedupe is off here).
        await stub.Upload(pb.UploadRequest(liveness_data=b"SANDBOX:score=0.2\nfirst"))
        assert sandbox.state.requests[UPLOAD_PATH] == 2
        text = await scrape(gateway.metrics_port or 0)
    assert sample(text, "liveness_gateway_idempotent_replays_total", rpc="Upload") == 2
    assert sample(text, "liveness_gateway_vendor_calls_saved_total", rpc="Upload") == 2


async def test_concurrent_duplicates_wait_for_the_first(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    _, channel = await _open(make_gateway, upload_dedupe_ttl_s=0)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        request = pb.DetectRequest(
            liveness_data=b"SANDBOX:score=0.3;delay_ms=300", request_id=_rid()
        )
        replies = await asyncio.gather(*(stub.Detect(request, timeout=10) for _ in range(5)))
    assert all(r == replies[0] for r in replies)
    assert sandbox.state.requests[DETECT_PATH] == 1


async def test_other_input_or_another_rpc_under_the_same_id_is_refused(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    _, channel = await _open(make_gateway)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        rid = _rid()
        await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.3", request_id=rid))
        refusals = [
            stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.4", request_id=rid)),
            stub.Detect(pb.DetectRequest(liveness_data_id="SANDBOX:score=0.3", request_id=rid)),
            stub.AntiHack(pb.AntiHackRequest(liveness_data=b"SANDBOX:score=0.3", request_id=rid)),
        ]
        for call in refusals:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            failure = failure_of(caught.value)
            assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
            assert failure.info.reason == "REQUEST_ID_REUSED"
            bad = failure.detail(error_details_pb2.BadRequest)
            assert isinstance(bad, error_details_pb2.BadRequest)
            assert bad.field_violations[0].field == "request_id"
    assert sandbox.state.requests[DETECT_PATH] == 1
    assert sandbox.state.requests[ANTI_HACK_PATH] == 0


@pytest.mark.parametrize(
    "request_id",
    ["not-a-uuid", "0b6f1e6c5c2a4d1f9d1e2a3b4c5d6e7f", " " + str(uuid.UUID(int=7)), "{" * 36],
)
async def test_a_request_id_that_is_not_a_canonical_uuid_is_invalid(
    make_gateway: Factory, sandbox: RunningSandbox, request_id: str
) -> None:
    _, channel = await _open(make_gateway)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Upload(pb.UploadRequest(liveness_data=b"x", request_id=request_id))
    failure = failure_of(caught.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.info.reason == "INVALID_REQUEST"
    bad = failure.detail(error_details_pb2.BadRequest)
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == ["request_id"]
    assert sandbox.state.total() == 0


async def test_the_vendors_verdict_on_the_input_is_replayed_a_transient_failure_is_not(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    _, channel = await _open(make_gateway)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        verdict = pb.DetectRequest(
            liveness_data=b"SANDBOX:status=WRONG_LIVENESS_DATA", request_id=_rid()
        )
        seen = []
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Detect(verdict)
            seen.append(failure_of(caught.value))
        assert seen[0].status == seen[1].status
        assert seen[0].info.reason == "WRONG_LIVENESS_DATA"
        assert sandbox.state.requests[DETECT_PATH] == 1
        # A vendor failing (500) is transient: the resend goes to the vendor again.
        transient = pb.DetectRequest(
            liveness_data=b"SANDBOX:status=INTERNAL_ERROR", request_id=_rid()
        )
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Detect(transient, timeout=10)
            assert failure_of(caught.value).info.reason == "INTERNAL_ERROR"
    assert sandbox.state.requests[DETECT_PATH] > 2


async def test_identical_upload_bytes_are_deduplicated_per_caller_within_the_ttl(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    gateway, channel = await _open(make_gateway)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        first = await stub.Upload(pb.UploadRequest(liveness_data=b"SANDBOX:score=0.1\nsame"))
        second = await stub.Upload(pb.UploadRequest(liveness_data=b"SANDBOX:score=0.1\nsame"))
        other = await stub.Upload(pb.UploadRequest(liveness_data=b"SANDBOX:score=0.1\nother"))
        text = await scrape(gateway.metrics_port or 0)
    assert second == first
    assert other.liveness_data_id != first.liveness_data_id
    assert sandbox.state.requests[UPLOAD_PATH] == 2
    assert sample(text, "liveness_gateway_upload_dedupe_hits_total") == 1
    assert sample(text, "liveness_gateway_vendor_calls_saved_total", rpc="Upload") == 1


async def test_dedupe_off_uploads_every_time(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    _, channel = await _open(make_gateway, upload_dedupe_ttl_s=0)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        for _ in range(2):
            await stub.Upload(pb.UploadRequest(liveness_data=b"SANDBOX:score=0.1\nsame"))
    assert sandbox.state.requests[UPLOAD_PATH] == 2


async def test_a_record_expires_after_the_ttl(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    _, channel = await _open(make_gateway, idempotency_ttl_s=0.3, upload_dedupe_ttl_s=0)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        request = pb.DetectRequest(liveness_data=b"SANDBOX:score=0.3", request_id=_rid())
        await stub.Detect(request)
        await stub.Detect(request)
        assert sandbox.state.requests[DETECT_PATH] == 1
        await asyncio.sleep(0.4)
        await stub.Detect(request)
    assert sandbox.state.requests[DETECT_PATH] == 2


def test_state_config_checks_itself() -> None:
    from liveness_gateway.config import ConfigError

    for bad in (
        {"url": "http://redis:6379"},
        {"url": "redis://user:secret@redis:6379"},
        {"timeout_s": 0},
        {"expected_processes": 0},
        {"rate_fallback": "open"},
        {"idempotency_ttl_s": 0},
        {"upload_dedupe_ttl_s": -1},
    ):
        with pytest.raises(ConfigError):
            StateConfig(**bad)
    ok = StateConfig(url="rediss://user@redis:6380/0", password="secret")
    assert "secret" not in repr(ok)
    assert dataclasses.replace(ok, url="unix:///run/redis.sock").shared


async def test_a_duplicate_waits_no_longer_than_its_own_deadline(
    make_gateway: Factory, sandbox: RunningSandbox
) -> None:
    _, channel = await _open(make_gateway)
    async with channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        request = pb.DetectRequest(
            liveness_data=b"SANDBOX:score=0.3;delay_ms=1500", request_id=_rid()
        )
        first = asyncio.ensure_future(stub.Detect(request, timeout=10))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Detect(request, timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 1.0
        reply = await first
        assert await stub.Detect(request, timeout=5) == reply  # the first's outcome, recorded
    assert sandbox.state.requests[DETECT_PATH] == 1
