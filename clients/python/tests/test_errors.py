"""Error vectors through the real gateway map onto the right exception class and details."""

from __future__ import annotations

import re

import grpc
import pytest

from liveness_client import (
    AsyncLivenessClient,
    Cancelled,
    CircuitOpen,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    LivenessError,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Reason,
    RequestIdReused,
    ResourceExhausted,
    StoreUnavailable,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    UnknownError,
    exception_class_for,
    from_status,
    parse_reason,
)
from liveness_client._proto.liveness.v1 import error_reason_pb2
from tests.conftest import REPO_ROOT

ERROR_REASON_PROTO = REPO_ROOT / "protos" / "liveness" / "v1" / "error_reason.proto"

Code = grpc.StatusCode


@pytest.mark.parametrize(
    ("vector", "cls", "code", "reason"),
    [
        ("status=OUT_OF_QUOTA", QuotaExceeded, Code.RESOURCE_EXHAUSTED, "OUT_OF_QUOTA"),
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
        await client.detect(data=f"SANDBOX:{vector}".encode(), request_id=f"errors-{reason}")
    error = caught.value
    assert type(error) is cls
    assert error.grpc_code is code
    assert error.reason is Reason[reason]
    assert error.reason == reason
    assert error.request_id == f"errors-{reason}"  # the gateway's trailers echo a sane id
    assert error.domain == "liveness.v1"
    assert error.vendor == "linkface"
    assert error.message
    assert error.status is not None


async def test_out_of_quota_is_not_a_rate_limit(client: AsyncLivenessClient) -> None:
    with pytest.raises(QuotaExceeded) as caught:
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
        await client.detect(data=b"SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=0.3")
    error = caught.value
    assert isinstance(error, ResourceExhausted)
    assert error.reason is Reason["RATE_LIMIT_EXCEEDED"]
    assert error.retry_after == 0.3
    assert len(error.request_id) == 32  # the client's fresh id, echoed by the gateway
    assert error.quota_violations


async def test_http_429_is_a_rate_limit(client: AsyncLivenessClient) -> None:
    with pytest.raises(RateLimited) as caught:
        await client.anti_hack(data=b"SANDBOX:http=429;retry_after=0.2")
    assert caught.value.retry_after == 0.2
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
    assert exception_class_for(grpc.StatusCode.RESOURCE_EXHAUSTED, "CALLER_RATE_LIMITED") is (
        RateLimited
    )
    assert exception_class_for(grpc.StatusCode.UNAVAILABLE, "CIRCUIT_OPEN") is CircuitOpen
    assert exception_class_for(grpc.StatusCode.UNAVAILABLE, "OVERLOADED") is Overloaded
    error = from_status(grpc.StatusCode.DATA_LOSS, "lost")
    assert type(error) is UnknownError
    assert error.grpc_code is grpc.StatusCode.DATA_LOSS
    assert (error.reason, error.metadata, error.retry_after) == ("", {}, None)
    assert str(error) == "DATA_LOSS: lost"


def test_request_id_reused_is_an_invalid_argument_of_its_own() -> None:
    assert (
        exception_class_for(grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
        is RequestIdReused
    )
    assert exception_class_for(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST") is (
        InvalidArgument
    )
    error = from_status(grpc.StatusCode.INVALID_ARGUMENT, "used before", request_id="r1")
    assert type(error) is InvalidArgument  # no ErrorInfo: the plain class
    reused = RequestIdReused("used before", reason="REQUEST_ID_REUSED", idempotency_key="k")
    assert isinstance(reused, InvalidArgument)
    assert reused.reason is Reason["REQUEST_ID_REUSED"]
    assert (reused.grpc_code, reused.idempotency_key) == (grpc.StatusCode.INVALID_ARGUMENT, "k")


def test_rate_limit_without_retry_info_defaults_to_one_second() -> None:
    error = from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")
    assert type(error) is ResourceExhausted
    limited = RateLimited("slow down", reason="RATE_LIMIT_EXCEEDED")
    assert limited.retry_after == 1.0


# The class each gRPC code stands for, before a reason family refines it.
_BY_CODE: dict[str, type[LivenessError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
    "UNAVAILABLE": Unavailable,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "INTERNAL": Internal,
    "NOT_FOUND": NotFound,
    "CANCELLED": Cancelled,
    "UNIMPLEMENTED": Unimplemented,
}


ALWAYS_RETRY_AFTER = (RateLimited, Overloaded, CircuitOpen, StoreUnavailable)


def _catalogue() -> dict[str, tuple[list[str], str]]:
    """error_reason.proto's values: name -> (the codes and the retry rule of its comment)."""
    values: dict[str, tuple[list[str], str]] = {}
    comment: list[str] = []
    for line in ERROR_REASON_PROTO.read_text().splitlines():
        line = line.strip()
        if line.startswith("//"):
            comment.append(line[2:].strip())
        elif match := re.fullmatch(r"([A-Z_]+) = (\d+);", line):
            rule = next((c for c in reversed(comment) if c.startswith("Code:")), "")
            found = re.fullmatch(r"Code: (.+)\. Fault: \w+\. Retry: (.+)\.", rule)
            if match[1] != "ERROR_REASON_UNSPECIFIED":
                assert found, f"{match[1]}: no 'Code: ... Fault: ... Retry: ...' line"
                values[match[1]] = (re.split(r", | or ", found[1]), found[2])
            comment = []
        else:
            comment = []
    return values


def test_every_error_reason_maps_to_the_class_its_comment_implies() -> None:
    catalogue = _catalogue()
    # The enum is made from the generated descriptor: the same names as the proto source.
    assert [r.name for r in Reason] == list(catalogue)
    assert [r.value for r in Reason] == [
        v.name for v in error_reason_pb2.ErrorReason.DESCRIPTOR.values if v.number
    ]
    for name, (codes, retry) in catalogue.items():
        reason = Reason[name]
        for code_name in codes:
            cls = exception_class_for(grpc.StatusCode[code_name], reason)
            assert issubclass(cls, _BY_CODE[code_name]), (name, code_name, cls)
            error = cls("x", reason=reason)
            assert error.reason is reason
            if retry == "after RetryInfo":
                # A family whose retry_after is always set.
                assert cls in ALWAYS_RETRY_AFTER, (name, cls)
                assert error.retry_after is not None
            else:
                assert retry in ("no", "by the gateway"), (name, retry)
                assert cls not in ALWAYS_RETRY_AFTER, (name, cls)
            if "QUOTA" in name:  # OUT_OF_QUOTA, CALLER_QUOTA_EXCEEDED
                assert cls is QuotaExceeded, name
            elif code_name in ("RESOURCE_EXHAUSTED", "UNAVAILABLE") and retry != "after RetryInfo":
                assert cls is _BY_CODE[code_name], (name, cls)


def test_reason_is_a_str_enum_and_unknown_names_stay_str() -> None:
    assert Reason["OUT_OF_QUOTA"] == "OUT_OF_QUOTA"
    assert f"{Reason['CIRCUIT_OPEN']}" == "CIRCUIT_OPEN"
    assert parse_reason("OUT_OF_QUOTA") is Reason["OUT_OF_QUOTA"]
    unknown = parse_reason("SOMETHING_NEWER")
    assert type(unknown) is str
    assert unknown == "SOMETHING_NEWER"
    assert parse_reason("") == ""
    error = from_status(grpc.StatusCode.INTERNAL, "x", request_id="r1")
    assert (error.reason, error.request_id) == ("", "r1")
