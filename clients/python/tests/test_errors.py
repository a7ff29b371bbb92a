"""Error vectors through the real gateway map onto the right exception class and details."""

from __future__ import annotations

import grpc
import pytest

from liveness_client import (
    AsyncLivenessClient,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    LivenessError,
    RateLimited,
    ResourceExhausted,
    Unavailable,
    UnknownError,
    exception_class_for,
    from_status,
)

Code = grpc.StatusCode


@pytest.mark.parametrize(
    ("vector", "cls", "code", "reason"),
    [
        ("status=OUT_OF_QUOTA", ResourceExhausted, Code.RESOURCE_EXHAUSTED, "OUT_OF_QUOTA"),
        ("status=NO_FACE_DETECTED", InvalidArgument, Code.INVALID_ARGUMENT, "NO_FACE_DETECTED"),
        ("status=UNAUTHORIZED", Internal, Code.INTERNAL, "UNAUTHORIZED"),
        ("status=KEY_EXPIRED", Internal, Code.INTERNAL, "KEY_EXPIRED"),
        ("status=INTERNAL_ERROR", Unavailable, Code.UNAVAILABLE, "INTERNAL_ERROR"),
        ("http=502", Unavailable, Code.UNAVAILABLE, "VENDOR_HTTP_ERROR"),
        ("body=garbage", Unavailable, Code.UNAVAILABLE, "VENDOR_BAD_REPLY"),
    ],
)
async def test_vendor_failures(
    client: AsyncLivenessClient,
    vector: str,
    cls: type[LivenessError],
    code: grpc.StatusCode,
    reason: str,
) -> None:
    with pytest.raises(cls) as caught:
        await client.detect(data=f"SANDBOX:{vector}".encode())
    error = caught.value
    assert type(error) is cls
    assert error.grpc_code is code
    assert error.reason == reason
    assert error.domain == "liveness.v1"
    assert error.vendor == "linkface"
    assert error.message
    assert error.status is not None


async def test_out_of_quota_is_not_a_rate_limit(client: AsyncLivenessClient) -> None:
    with pytest.raises(ResourceExhausted) as caught:
        await client.detect(data=b"SANDBOX:status=OUT_OF_QUOTA")
    error = caught.value
    assert not isinstance(error, RateLimited)
    assert error.retry_after is None
    assert error.quota_violations
    assert error.metadata["httpStatus"] == "403"
    assert error.vendor_request_id is not None
    assert error.vendor_request_id.startswith("TID")


async def test_rate_limit_carries_retry_after(client: AsyncLivenessClient) -> None:
    with pytest.raises(RateLimited) as caught:
        await client.detect(data=b"SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=7")
    error = caught.value
    assert isinstance(error, ResourceExhausted)
    assert error.reason == "RATE_LIMIT_EXCEEDED"
    assert error.retry_after == 7
    assert error.quota_violations


async def test_http_429_is_a_rate_limit(client: AsyncLivenessClient) -> None:
    with pytest.raises(RateLimited) as caught:
        await client.anti_hack(data=b"SANDBOX:http=429;retry_after=3")
    assert caught.value.retry_after == 3
    assert caught.value.vendor == "accuauth"


async def test_validation_error_names_the_field(client: AsyncLivenessClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.detect(url="ftp://example.com/file")
    error = caught.value
    assert error.reason == "INVALID_REQUEST"
    assert [v.field for v in error.field_violations] == ["liveness_data_url"]


async def test_empty_bytes_are_refused(client: AsyncLivenessClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.upload(data=b"")
    assert caught.value.reason == "INVALID_REQUEST"


async def test_deadline(client: AsyncLivenessClient) -> None:
    with pytest.raises(DeadlineExceeded) as caught:
        await client.detect(data=b"SANDBOX:delay_ms=3000", timeout=0.5)
    assert caught.value.grpc_code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_factory_picks_the_class_by_code_and_reason() -> None:
    assert exception_class_for(grpc.StatusCode.RESOURCE_EXHAUSTED) is ResourceExhausted
    assert (
        exception_class_for(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMIT_EXCEEDED")
        is RateLimited
    )
    assert exception_class_for(grpc.StatusCode.UNAVAILABLE, "RATE_LIMIT_EXCEEDED") is Unavailable
    error = from_status(grpc.StatusCode.DATA_LOSS, "lost")
    assert type(error) is UnknownError
    assert error.grpc_code is grpc.StatusCode.DATA_LOSS
    assert (error.reason, error.metadata, error.retry_after) == ("", {}, None)
    assert str(error) == "DATA_LOSS: lost"


def test_rate_limit_without_retry_info_defaults_to_one_second() -> None:
    error = from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")
    assert type(error) is ResourceExhausted
    limited = RateLimited("slow down", reason="RATE_LIMIT_EXCEEDED")
    assert limited.retry_after == 1.0
