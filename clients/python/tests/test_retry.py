"""The channel's service config: UNAVAILABLE (only) is retried by gRPC itself, Upload never.

A small real gRPC server on loopback, built from the client's own generated servicer, fails a
set number of attempts and counts them, so the retries are observed on the wire.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from liveness_client import (
    SERVICE_CONFIG,
    AsyncLivenessClient,
    InvalidArgument,
    LivenessClient,
    Unavailable,
)
from liveness_client._proto.liveness.v1 import liveness_pb2 as pb
from liveness_client._proto.liveness.v1 import liveness_pb2_grpc
from liveness_client.channel import MAX_MESSAGE_BYTES, channel_options


class FlakyServicer(liveness_pb2_grpc.LivenessCheckServicer):
    """Fails the first ``failures`` attempts of any RPC with ``code``, then answers."""

    def __init__(self, failures: int, code: grpc.StatusCode) -> None:
        self.failures = failures
        self.code = code
        self.attempts: list[dict[str, str]] = []

    async def _attempt(self, context: Any) -> None:
        self.attempts.append({k: v for k, v in context.invocation_metadata()})
        if len(self.attempts) <= self.failures:
            info = any_pb2.Any()
            info.Pack(error_details_pb2.ErrorInfo(reason="FLAKY", domain="liveness.v1"))
            status = status_pb2.Status(code=self.code.value[0], message="flaky", details=[info])
            await context.abort_with_status(rpc_status.to_status(status))

    async def Upload(self, request: pb.UploadRequest, context: Any) -> pb.UploadResponse:
        await self._attempt(context)
        return pb.UploadResponse(liveness_data_id="LD1", vendor_request_id="TID1")

    async def Detect(self, request: pb.DetectRequest, context: Any) -> pb.DetectResponse:
        await self._attempt(context)
        return pb.DetectResponse(score=0.25, verdict=pb.VERDICT_LIVE, threshold=0.98)

    async def AntiHack(self, request: pb.AntiHackRequest, context: Any) -> pb.AntiHackResponse:
        await self._attempt(context)
        return pb.AntiHackResponse(score=0.25, verdict=pb.VERDICT_LIVE, threshold=0.98)


FlakyFactory = Callable[..., Awaitable[tuple[FlakyServicer, str]]]


@pytest.fixture
async def flaky() -> AsyncIterator[FlakyFactory]:
    servers: list[grpc.aio.Server] = []

    async def start(
        failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    ) -> tuple[FlakyServicer, str]:
        servicer = FlakyServicer(failures, code)
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        liveness_pb2_grpc.add_LivenessCheckServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return servicer, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        await server.stop(0)


def test_service_config_retries_unavailable_only() -> None:
    options = dict(channel_options())
    config = json.loads(options["grpc.service_config"])
    assert config == json.loads(json.dumps(SERVICE_CONFIG))
    by_method = {
        (name["service"], name.get("method", "")): method_config
        for method_config in config["methodConfig"]
        for name in method_config["name"]
    }
    for method in ("Detect", "AntiHack"):
        policy = by_method["liveness.v1.LivenessCheck", method]["retryPolicy"]
        assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
        assert policy["maxAttempts"] >= 2
    assert by_method["grpc.health.v1.Health", ""]["retryPolicy"]["retryableStatusCodes"] == [
        "UNAVAILABLE"
    ]
    assert "retryPolicy" not in by_method["liveness.v1.LivenessCheck", "Upload"]
    assert options["grpc.enable_retries"] == 1
    assert options["grpc.max_send_message_length"] == 6 * 1024 * 1024
    assert options["grpc.max_receive_message_length"] == 6 * 1024 * 1024


def test_channel_options_can_be_overridden() -> None:
    options = dict(channel_options([("grpc.max_receive_message_length", 1024)]))
    assert options["grpc.max_receive_message_length"] == 1024
    assert options["grpc.max_send_message_length"] == MAX_MESSAGE_BYTES


async def test_unavailable_is_retried(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=2)
    async with AsyncLivenessClient(target) as client:
        result = await client.detect(data=b"x", request_id="req-1")
    assert result.score == 0.25
    assert len(servicer.attempts) == 3
    assert servicer.attempts[-1]["grpc-previous-rpc-attempts"] == "2"
    assert {a["x-request-id"] for a in servicer.attempts} == {"req-1"}


async def test_a_five_mib_request_is_retried_too(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=1)
    async with AsyncLivenessClient(target) as client:
        result = await client.anti_hack(data=b"x" * (5 * 1024 * 1024))
    assert result.score == 0.25
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


async def test_upload_is_never_retried(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=1)
    async with AsyncLivenessClient(target) as client:
        with pytest.raises(Unavailable):
            await client.upload(data=b"x")
    assert len(servicer.attempts) == 1


async def test_metadata_is_sent(flaky: FlakyFactory) -> None:
    servicer, target = await flaky(failures=0)
    async with AsyncLivenessClient(target, auth_token="s3cret") as client:
        await client.detect(data=b"x", metadata=[("x-tenant", "t1")])
        await client.detect(data=b"x")
    first, second = servicer.attempts
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
