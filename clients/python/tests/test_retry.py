"""The channel's service config: the contract's, so gRPC itself resends as the gateway advises.

A small real gRPC server on loopback, built from the client's own generated servicer, fails a
set number of attempts with a chosen code and ``grpc-retry-pushback-ms`` (gRFC A6) and records
each attempt, so the retries are observed on the wire.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from liveness_client import (
    DEFAULT_TIMEOUT_S,
    SERVICE_CONFIG,
    AsyncLivenessClient,
    InvalidArgument,
    LivenessClient,
    ResourceExhausted,
    Unavailable,
)
from liveness_client._proto.liveness.v1 import liveness_pb2 as pb
from liveness_client._proto.liveness.v1 import liveness_pb2_grpc
from liveness_client.channel import MAX_MESSAGE_BYTES, channel_options
from tests.conftest import REPO_ROOT

SHIPPED_CONFIG = REPO_ROOT / "protos" / "liveness" / "v1" / "service_config.json"


@dataclass
class Attempt:
    metadata: dict[str, str]
    at: float
    """time.monotonic() when the attempt reached the server."""
    time_remaining: float | None
    key: str = ""
    """The request's ``request_id`` (the idempotency key)."""


class FlakyServicer(liveness_pb2_grpc.LivenessCheckServicer):
    """Fails the first ``failures`` attempts of any RPC with ``code`` (and ``pushback_ms`` in
    ``grpc-retry-pushback-ms``, when given), then answers; every reply carries x-request-id."""

    def __init__(self, failures: int, code: grpc.StatusCode, pushback_ms: int | None) -> None:
        self.failures = failures
        self.code = code
        self.pushback_ms = pushback_ms
        self.attempts: list[Attempt] = []

    async def _attempt(self, context: Any, key: str) -> None:
        metadata = {k: v for k, v in context.invocation_metadata()}
        self.attempts.append(Attempt(metadata, time.monotonic(), context.time_remaining(), key))
        trailers = [("x-request-id", "gw-" + metadata.get("x-request-id", ""))]
        if len(self.attempts) <= self.failures:
            info = any_pb2.Any()
            info.Pack(error_details_pb2.ErrorInfo(reason="FLAKY", domain="liveness.v1"))
            status = status_pb2.Status(code=self.code.value[0], message="flaky", details=[info])
            trailers.append(("grpc-status-details-bin", status.SerializeToString()))
            if self.pushback_ms is not None:
                trailers.append(("grpc-retry-pushback-ms", str(self.pushback_ms)))
            await context.abort(self.code, "flaky", trailing_metadata=tuple(trailers))
        context.set_trailing_metadata(tuple(trailers))

    async def Upload(self, request: pb.UploadRequest, context: Any) -> pb.UploadResponse:
        await self._attempt(context, request.request_id)
        return pb.UploadResponse(liveness_data_id="LD1", vendor_request_id="TID1")

    async def Detect(self, request: pb.DetectRequest, context: Any) -> pb.DetectResponse:
        await self._attempt(context, request.request_id)
        return pb.DetectResponse(score=0.25, verdict=pb.VERDICT_LIVE, threshold=0.98)

    async def AntiHack(self, request: pb.AntiHackRequest, context: Any) -> pb.AntiHackResponse:
        await self._attempt(context, request.request_id)
        return pb.AntiHackResponse(score=0.25, verdict=pb.VERDICT_LIVE, threshold=0.98)


FlakyFactory = Callable[..., Awaitable[tuple[FlakyServicer, str]]]


@pytest.fixture
async def flaky() -> AsyncIterator[FlakyFactory]:
    servers: list[grpc.aio.Server] = []

    async def start(
        failures: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        pushback_ms: int | None = None,
    ) -> tuple[FlakyServicer, str]:
        servicer = FlakyServicer(failures, code, pushback_ms)
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        liveness_pb2_grpc.add_LivenessCheckServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return servicer, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        await server.stop(0)


def test_the_channel_uses_the_shipped_service_config() -> None:
    options = dict(channel_options())
    shipped = json.loads(SHIPPED_CONFIG.read_text())
    assert json.loads(options["grpc.service_config"]) == shipped
    assert shipped == SERVICE_CONFIG
    (method_config,) = shipped["methodConfig"]
    assert method_config["name"] == [{"service": "liveness.v1.LivenessCheck"}]
    assert float(method_config["timeout"].rstrip("s")) == DEFAULT_TIMEOUT_S == 20.0
    assert options["grpc.enable_retries"] == 1
    # A 5 MiB request (plus framing) must fit the per-call buffer, or gRPC never resends it.
    assert options["grpc.per_rpc_retry_buffer_size"] >= 6 * 1024 * 1024
    assert options["grpc.retry_buffer_size"] >= options["grpc.per_rpc_retry_buffer_size"]
    assert options["grpc.max_send_message_length"] == 6 * 1024 * 1024
    assert options["grpc.max_receive_message_length"] == 6 * 1024 * 1024


def test_channel_options_can_be_overridden() -> None:
    options = dict(channel_options([("grpc.max_receive_message_length", 1024)]))
    assert options["grpc.max_receive_message_length"] == 1024
    assert options["grpc.max_send_message_length"] == MAX_MESSAGE_BYTES


async def test_every_call_carries_the_default_deadline(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=0)
    async with AsyncLivenessClient(target) as client:
        await client.detect(data=b"x")
        await client.upload(data=b"x", timeout=3)
    default, given = (a.time_remaining for a in servicer.attempts)
    assert default is not None
    assert DEFAULT_TIMEOUT_S - 5 < default < DEFAULT_TIMEOUT_S + 0.5  # the clocks differ a little
    assert given is not None
    assert given < 3.5  # the caller's own, not the default


async def test_unavailable_is_retried(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=2)
    async with AsyncLivenessClient(target) as client:
        result = await client.detect(data=b"x", request_id="req-1")
    assert result.score == 0.25
    assert result.request_id == "gw-req-1"  # the gateway's, from the trailers
    assert len(servicer.attempts) == 3
    assert servicer.attempts[-1].metadata["grpc-previous-rpc-attempts"] == "2"
    assert {a.metadata["x-request-id"] for a in servicer.attempts} == {"req-1"}


async def test_resource_exhausted_is_resent_after_the_pushback(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(
        failures=1, code=grpc.StatusCode.RESOURCE_EXHAUSTED, pushback_ms=400
    )
    async with AsyncLivenessClient(target) as client:
        result = await client.anti_hack(data=b"x")
    assert result.score == 0.25
    first, second = servicer.attempts
    assert second.at - first.at >= 0.4


async def test_a_pushback_of_minus_one_is_never_resent(flaky: FlakyFactory) -> None:
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        servicer, target = await flaky(failures=100, code=code, pushback_ms=-1)
        async with AsyncLivenessClient(target) as client:
            with pytest.raises((Unavailable, ResourceExhausted)) as caught:
                await client.detect(data=b"x", request_id="req-2")
        assert len(servicer.attempts) == 1, code
        assert caught.value.grpc_code is code
        assert caught.value.request_id == "gw-req-2"


async def test_upload_is_resent_only_as_the_pushback_allows(flaky: FlakyFactory) -> None:
    refused, target = await flaky(failures=1, pushback_ms=-1)
    async with AsyncLivenessClient(target) as client:
        with pytest.raises(Unavailable):
            await client.upload(data=b"x")
    assert len(refused.attempts) == 1

    advised, target = await flaky(failures=1, pushback_ms=100)
    async with AsyncLivenessClient(target) as client:
        result = await client.upload(data=b"x")
    assert result.liveness_data_id == "LD1"
    assert len(advised.attempts) == 2
    assert advised.attempts[1].at - advised.attempts[0].at >= 0.1


async def test_a_five_mib_request_is_resent_too(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=1, pushback_ms=10)
    async with AsyncLivenessClient(target) as client:
        result = await client.anti_hack(data=b"x" * (5 * 1024 * 1024))
    assert result.score == 0.25
    assert len(servicer.attempts) == 2


async def test_the_sync_client_resends_and_returns_the_request_id(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=1, pushback_ms=10)

    def call() -> str:  # blocking: in a thread, while this loop serves
        with LivenessClient(target) as client:
            return client.detect(data=b"x" * (5 * 1024 * 1024), request_id="req-3").request_id

    assert await asyncio.to_thread(call) == "gw-req-3"
    assert len(servicer.attempts) == 2


async def test_retries_give_up_with_the_last_rich_status(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=100)
    async with AsyncLivenessClient(target) as client:
        with pytest.raises(Unavailable) as caught:
            await client.detect(data=b"x")
    assert len(servicer.attempts) == 3
    assert caught.value.reason == "FLAKY"
    assert caught.value.domain == "liveness.v1"


async def test_other_codes_are_not_retried(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=1, code=grpc.StatusCode.INVALID_ARGUMENT)
    async with AsyncLivenessClient(target) as client:
        with pytest.raises(InvalidArgument) as caught:
            await client.detect(data=b"x")
    assert len(servicer.attempts) == 1
    assert caught.value.reason == "FLAKY"


async def test_metadata_is_sent(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=0)
    async with AsyncLivenessClient(target, auth_token="s3cret") as client:
        await client.detect(data=b"x", metadata=[("x-tenant", "t1")])
        await client.detect(data=b"x")
    first, second = (a.metadata for a in servicer.attempts)
    assert first["authorization"] == "Bearer s3cret"
    assert first["x-tenant"] == "t1"
    assert first["user-agent"].startswith("liveness-client-python/")
    # A fresh request id per call unless the caller gives one.
    assert first["x-request-id"] != second["x-request-id"]


async def test_nothing_listening_is_unavailable(dead_target: str) -> None:
    async with AsyncLivenessClient(dead_target, timeout=5) as client:
        with pytest.raises(Unavailable) as caught:
            await client.detect(data=b"x")
    assert caught.value.grpc_code is grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason == ""  # the transport failed: no status from a server


def test_nothing_listening_is_unavailable_sync(dead_target: str) -> None:
    with LivenessClient(dead_target, timeout=5) as client, pytest.raises(Unavailable):
        client.health()


# The idempotency key (the requests' request_id): an upload's is made once per call and sent
# unchanged on every attempt gRPC makes, so a resend can never create a second vendor object.
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def test_an_upload_key_is_made_once_and_sent_on_every_attempt(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=2, pushback_ms=10)
    async with AsyncLivenessClient(target) as client:
        result = await client.upload(data=b"x")
        second = await client.upload(data=b"x")
    first_call = servicer.attempts[:3]
    assert [a.metadata["grpc-previous-rpc-attempts"] for a in first_call[1:]] == ["1", "2"]
    keys = {a.key for a in first_call}
    assert len(keys) == 1
    assert UUID4.fullmatch(result.idempotency_key)
    assert keys == {result.idempotency_key}
    # The correlation id is another thing, also the same on every attempt.
    assert len({a.metadata["x-request-id"] for a in first_call}) == 1
    assert first_call[0].metadata["x-request-id"] != result.idempotency_key
    # Another upload call is another upload: another key.
    assert servicer.attempts[3].key == second.idempotency_key != result.idempotency_key


async def test_the_sync_client_keeps_the_upload_key_across_attempts(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=1, pushback_ms=10)
    request = pb.UploadRequest(liveness_data=b"x")

    def call() -> str:  # blocking: in a thread, while this loop serves
        with LivenessClient(target) as client:
            return client.upload(request=request).idempotency_key

    key = await asyncio.to_thread(call)
    assert [a.key for a in servicer.attempts] == [key, key]
    assert UUID4.fullmatch(key)
    assert request.request_id == ""  # the caller's message is not changed


async def test_a_failed_upload_names_its_key_for_a_safe_resend(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=3, pushback_ms=10)
    async with AsyncLivenessClient(target) as client:
        with pytest.raises(Unavailable) as caught:
            await client.upload(data=b"x")
        key = caught.value.idempotency_key
        assert [a.key for a in servicer.attempts] == [key] * 3
        resent = await client.upload(data=b"x", idempotency_key=key)
    assert resent.idempotency_key == key == servicer.attempts[-1].key


async def test_detect_and_anti_hack_send_a_key_only_when_given(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=0)
    mine = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    async with AsyncLivenessClient(target) as client:
        plain = await client.detect(data=b"x")
        keyed = await client.detect(data=b"x", idempotency_key=mine)
        from_request = await client.anti_hack(
            request=pb.AntiHackRequest(liveness_data=b"x", request_id=mine)
        )
        await client.anti_hack(data=b"x")
        uploaded = await client.upload(data=b"x", idempotency_key=mine)
    assert [a.key for a in servicer.attempts] == ["", mine, mine, "", mine]
    assert (plain.idempotency_key, keyed.idempotency_key) == ("", mine)
    assert from_request.idempotency_key == uploaded.idempotency_key == mine


async def test_a_malformed_or_conflicting_key_is_refused_before_any_call(
    flaky: FlakyFactory,
) -> None:
    servicer, target = await flaky(failures=0)
    async with AsyncLivenessClient(target) as client:
        for bad in ("order-4711", "0f8fad5bd9cb469fa16570867728950e", "0f8fad5b-d9cb-469f-a165"):
            with pytest.raises(ValueError, match="canonical 36-character"):
                await client.upload(data=b"x", idempotency_key=bad)
            with pytest.raises(ValueError, match="canonical 36-character"):
                await client.detect(request=pb.DetectRequest(liveness_data=b"x", request_id=bad))
        with pytest.raises(ValueError, match="differs"):
            await client.upload(
                request=pb.UploadRequest(liveness_data=b"x", request_id=str(uuid.uuid4())),
                idempotency_key=str(uuid.uuid4()),
            )
    assert servicer.attempts == []
