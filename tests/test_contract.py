"""The error and retry contract of liveness.v1: the reason catalogue and the retry advice.

The gateway may emit no ErrorInfo reason the ``ErrorReason`` enum lacks, every value says in
its comment what a caller should do, the README's retry table is the enum's, and every
failure tells gRFC A6 clients whether to resend (``grpc-retry-pushback-ms``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liveness.v1 import liveness_pb2 as pb
from liveness.v1.error_reason_pb2 import ErrorReason
from liveness_gateway import errors
from liveness_gateway.config import ResilienceConfig
from liveness_gateway.errors import REASONS, VENDOR_STATUS_TABLE, GatewayError
from liveness_gateway.vendors import ENDPOINTS
from liveness_gateway.vendors.base import ParseContext, VendorReply

from tests.status import failure_of

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "protos" / "liveness" / "v1" / "error_reason.proto"
README = ROOT / "README.md"
C = grpc.StatusCode

_VALUE = re.compile(r"((?:  //[^\n]*\n)+)  ([A-Z][A-Z0-9_]+) = \d+;", re.MULTILINE)
_CONTRACT = re.compile(r"Code: ([^.]+)\. Fault: (\w+)\. Retry: ([^.]+)\.$")


def catalogue() -> dict[str, tuple[str, str, str]]:
    """Each enum value with the code, fault and retry its comment states."""
    found: dict[str, tuple[str, str, str]] = {}
    for comment, name in _VALUE.findall(PROTO.read_text(encoding="utf-8")):
        if name == "ERROR_REASON_UNSPECIFIED":
            continue
        last = comment.strip().splitlines()[-1].strip().removeprefix("//").strip()
        match = _CONTRACT.match(last)
        assert match, f"{name}: the last comment line must state Code, Fault and Retry"
        found[name] = (match.group(1), match.group(2), match.group(3))
    return found


def retry_table() -> str:
    lines = [
        "| reason | gRPC code | at fault | who retries, after what |",
        "|---|---|---|---|",
    ]
    who = {
        "no": "nobody: a resend cannot help (`grpc-retry-pushback-ms: -1`)",
        "by the gateway": "the gateway, where safe; clients do not (`grpc-retry-pushback-ms: -1`)",
        "after RetryInfo": "the client, after the advised delay (`grpc-retry-pushback-ms`)",
    }
    for name, (code, fault, retry) in catalogue().items():
        lines.append(f"| `{name}` | {code} | {fault} | {who[retry]} |")
    return "\n".join(lines) + "\n"


def test_the_enum_and_the_proto_comments_agree() -> None:
    assert set(catalogue()) == REASONS
    assert len(REASONS) == len(ErrorReason.keys()) - 1


@pytest.mark.parametrize(
    "readme", [README, ROOT / "clients" / "README.md"], ids=["root", "clients"]
)
def test_the_readme_retry_table_is_the_catalogue(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    found = re.search(r"<!-- reasons:begin[^>]*-->\n(.*?)<!-- reasons:end -->", text, re.S)
    assert found, f"{readme} has no reasons block"
    assert found.group(1) == retry_table(), "regenerate: python -m tests.test_contract"


def test_the_advice_follows_the_catalogue() -> None:
    for name, (_, _, retry) in catalogue().items():
        err = GatewayError(C.UNAVAILABLE, name, "x", retry_delay_s=1.5)
        expected = 1500 if retry == "after RetryInfo" else -1
        assert err.retry_pushback_ms == expected, name


def test_every_documented_vendor_status_is_in_the_catalogue() -> None:
    assert set(VENDOR_STATUS_TABLE) <= REASONS
    constants = {
        value
        for key, value in vars(errors).items()
        if key.isupper()
        and isinstance(value, str)
        and re.fullmatch(r"[A-Z_]+", value)
        and key not in ("RETRY_PUSHBACK_KEY",)
    }
    assert constants <= REASONS, constants - REASONS


def test_a_reason_outside_the_catalogue_cannot_be_built() -> None:
    with pytest.raises(ValueError, match=r"not a liveness\.v1\.ErrorReason"):
        GatewayError(C.INTERNAL, "SOMETHING_NEW", "x")


@settings(max_examples=300, deadline=None)
@given(
    status=st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True) | st.text(max_size=30),
    http=st.sampled_from([200, 400, 401, 403, 404, 418, 429, 500, 502, 503]),
    endpoint=st.sampled_from(ENDPOINTS),
)
def test_any_vendor_status_maps_into_the_catalogue(status: str, http: int, endpoint) -> None:
    body = json.dumps({"status": status, "reason": "r", "request_id": "TID1"}).encode()
    reasons = []
    try:
        endpoint.parse(VendorReply(endpoint.vendor, http, body), ParseContext(endpoint))
    except GatewayError as err:
        reasons.append(err.reason)
    assert set(reasons) <= REASONS


@pytest.mark.parametrize(
    ("vector", "reason", "pushback"),
    [
        ("SANDBOX:http=502", "VENDOR_HTTP_ERROR", "-1"),
        ("SANDBOX:status=DOWNLOAD_TIMEOUT", "DOWNLOAD_TIMEOUT", "-1"),
        ("SANDBOX:status=OUT_OF_QUOTA", "OUT_OF_QUOTA", "-1"),
        ("SANDBOX:status=NO_FACE_DETECTED", "NO_FACE_DETECTED", "-1"),
        ("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=2", "RATE_LIMIT_EXCEEDED", "2000"),
        ("SANDBOX:http=429;retry_after=3", "RATE_LIMIT_EXCEEDED", "3000"),
        # 0 would make grpcio wait out the deadline instead of resending
        ("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=0", "RATE_LIMIT_EXCEEDED", "1"),
    ],
)
async def test_every_failure_carries_retry_advice(
    make_stub, vector: str, reason: str, pushback: str
) -> None:
    stub = await make_stub(resilience=ResilienceConfig(breaker_failures=100))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data=vector.encode()))
    assert failure_of(caught.value).info.reason == reason
    trailers = dict(caught.value.trailing_metadata() or ())
    assert trailers[errors.RETRY_PUSHBACK_KEY] == pushback


async def test_no_resend_is_advised_past_the_callers_deadline(make_stub) -> None:
    """A delay the caller's deadline cannot wait out is advised as -1: the caller gets the
    gateway's reason at once instead of its own DEADLINE_EXCEEDED later."""
    stub = await make_stub(resilience=ResilienceConfig(breaker_failures=100))
    vector = b"SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=5"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data=vector), timeout=2)
    assert failure_of(caught.value).info.reason == "RATE_LIMIT_EXCEEDED"
    assert dict(caught.value.trailing_metadata())[errors.RETRY_PUSHBACK_KEY] == "-1"


async def test_an_open_breaker_advises_its_remaining_time(make_stub) -> None:
    stub = await make_stub(resilience=ResilienceConfig(breaker_failures=1, breaker_open_s=4.0))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:http=502"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.1"))
    assert failure_of(caught.value).info.reason == "CIRCUIT_OPEN"
    advised = int(dict(caught.value.trailing_metadata())[errors.RETRY_PUSHBACK_KEY])
    assert 3000 < advised <= 4000


SERVICE_CONFIG = ROOT / "protos" / "liveness" / "v1" / "service_config.json"


def test_the_service_config_fits_the_gateway() -> None:
    """One service config for every client: retries only where the gateway's advice allows
    (codes that carry grpc-retry-pushback-ms), and a deadline that outlasts the gateway's
    longest single vendor call, so that a caller sees VENDOR_TIMEOUT, not its own deadline."""
    from liveness_gateway import settings
    from liveness_gateway.config import VENDOR_DOWNLOAD_LIMIT_S

    config = json.loads(SERVICE_CONFIG.read_text(encoding="utf-8"))
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "liveness.v1.LivenessCheck"}]
    policy = method["retryPolicy"]
    assert set(policy["retryableStatusCodes"]) == {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
    assert policy["maxAttempts"] <= ResilienceConfig().max_attempts
    assert config["retryThrottling"] == {"maxTokens": 10, "tokenRatio": 0.1}
    timeout_s = float(method["timeout"].removesuffix("s"))
    vendor_timeouts = [s.default for s in settings.SETTINGS if s.key.endswith(".timeout_s")]
    longest = max(vendor_timeouts) + VENDOR_DOWNLOAD_LIMIT_S
    assert timeout_s > longest + 1.0


if __name__ == "__main__":  # pragma: no cover - regenerates the README block
    import sys

    sys.stdout.write(retry_table())
