"""The retry, breaker, shedding and deadline policy as table tests over the in-memory transport.

No sockets: :class:`~liveness_gateway.upstream.Upstream` is built directly over
:class:`~liveness_gateway.transport.InMemoryTransport`, whose handler plays the vendor. What
only sockets show (resets mid-upload, hung connects, dropped keep-alives) stays in
test_faults.py, over toxiproxy.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1.liveness_pb2_grpc import LivenessCheckStub
from liveness_gateway import errors
from liveness_gateway.config import GatewayConfig, ResilienceConfig, VendorConfig
from liveness_gateway.errors import GatewayError
from liveness_gateway.metrics import Metrics
from liveness_gateway.transport import InMemoryTransport
from liveness_gateway.upstream import Upstream
from liveness_gateway.validation import Source
from liveness_gateway.vendors import linkface
from liveness_gateway.vendors.base import Endpoint, VendorReply, VendorRequest
from prometheus_client import CollectorRegistry

from tests.conftest import CHANNEL_OPTIONS

C = grpc.StatusCode
OK = {"status": "OK", "score": "0.25", "request_id": "TID1", "liveness_data_id": "LD1"}
FAST = {"backoff_base_s": 0.001, "backoff_cap_s": 0.002}


def json_reply(body: dict[str, Any], http: int = 200) -> VendorReply:
    return VendorReply("linkface", http, json.dumps(body).encode())


HTML_502 = VendorReply("linkface", 502, b"<html>bad gateway</html>")
NO_FACE = json_reply({"status": "NO_FACE_DETECTED", "reason": "no face"}, 400)
INTERNAL_ERROR = json_reply({"status": "INTERNAL_ERROR"}, 500)
MISSING_SOURCE = json_reply(
    {
        "status": "INVALID_ARGUMENT",
        "reason": "must specify 'file', 'liveness_data_url' or 'liveness_data_id' argument",
    },
    400,
)


REFUSED = ConnectionRefusedError  # nothing was sent
RESET = ConnectionResetError  # dropped after the request went out

Step = VendorReply | type[BaseException] | float
"""What the vendor does on one attempt: a reply, an exception, or hang for that long."""


@dataclass
class Vendor:
    """Plays the given steps in order (the last one repeats)."""

    steps: Sequence[Step]
    calls: int = 0

    async def __call__(self, request: VendorRequest) -> VendorReply:
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        if isinstance(step, VendorReply):
            return step
        if isinstance(step, float):
            await asyncio.sleep(step)
            return json_reply(OK)
        raise step()


def make_upstream(
    vendor: Callable[[VendorRequest], Awaitable[VendorReply]],
    *,
    timeout_s: float = 1.0,
    **resilience: Any,
) -> tuple[Upstream, Metrics]:
    cfg = VendorConfig("linkface", "http://vendor.invalid", "id", "s3cret", timeout_s)
    other = VendorConfig("accuauth", "http://vendor.invalid", "id", "s3cret")
    config = GatewayConfig(
        linkface=cfg, accuauth=other, resilience=ResilienceConfig(**{**FAST, **resilience})
    )
    metrics = Metrics(CollectorRegistry())
    return Upstream(config, InMemoryTransport(vendor), metrics), metrics


async def call(
    upstream: Upstream,
    endpoint: Endpoint[Any] = linkface.DETECT,
    source: Source | None = None,
    deadline_s: float | None = None,
) -> Any:
    cfg = VendorConfig("linkface", "http://vendor.invalid", "id", "s3cret")
    request = endpoint.build(cfg, source or Source("data", data=b"x"))
    deadline = None if deadline_s is None else time.monotonic() + deadline_s
    return await upstream.call(endpoint, request, deadline)


@dataclass(frozen=True)
class Case:
    name: str
    steps: Sequence[Step]
    endpoint: Endpoint[Any]
    code: grpc.StatusCode | None  # None: success
    reason: str | None
    attempts: int
    settings: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("ok", [json_reply(OK)], linkface.DETECT, None, None, 1),
    Case("502 then ok: retried", [HTML_502, json_reply(OK)], linkface.DETECT, None, None, 2),
    Case("502 always: every attempt", [HTML_502], linkface.DETECT, C.UNAVAILABLE,
         "VENDOR_HTTP_ERROR", 3),
    Case("502 with --max-attempts 5", [HTML_502], linkface.DETECT, C.UNAVAILABLE,
         "VENDOR_HTTP_ERROR", 5, {"max_attempts": 5, "breaker_failures": 10}),
    Case("INTERNAL_ERROR status: retried", [INTERNAL_ERROR], linkface.DETECT, C.UNAVAILABLE,
         "INTERNAL_ERROR", 3),
    Case("caller's fault: never retried", [NO_FACE], linkface.DETECT, C.INVALID_ARGUMENT,
         "NO_FACE_DETECTED", 1),
    Case("vendor misreads the part: INTERNAL, not retried", [MISSING_SOURCE], linkface.DETECT,
         C.INTERNAL, "VENDOR_REQUEST_REJECTED", 1),
    Case("refused: nothing sent, retried even for upload", [REFUSED], linkface.UPLOAD,
         C.UNAVAILABLE, "VENDOR_UNREACHABLE", 3),
    Case("reset after sending: upload is not resent", [RESET], linkface.UPLOAD, C.UNAVAILABLE,
         "VENDOR_UNREACHABLE", 1),
    Case("reset after sending: detect is resent", [RESET, json_reply(OK)], linkface.DETECT, None,
         None, 2),
    Case("502 on upload: not resent", [HTML_502], linkface.UPLOAD, C.UNAVAILABLE,
         "VENDOR_HTTP_ERROR", 1),
    Case("vendor timeout: not retried", [0.5], linkface.DETECT, C.UNAVAILABLE, "VENDOR_TIMEOUT",
         1),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_policy_matrix(case: Case) -> None:
    vendor = Vendor(case.steps)
    upstream, metrics = make_upstream(vendor, timeout_s=0.1, **case.settings)
    if case.code is None:
        result = await call(upstream, case.endpoint)
        assert result.score == 0.25
    else:
        with pytest.raises(GatewayError) as caught:
            await call(upstream, case.endpoint)
        assert (caught.value.code, caught.value.reason) == (case.code, case.reason)
    assert vendor.calls == case.attempts
    retries = metrics.registry.get_sample_value(
        "liveness_gateway_vendor_retries_total",
        {"vendor": "linkface", "endpoint": case.endpoint.name},
    )
    assert retries == case.attempts - 1


async def test_the_caller_deadline_bounds_the_vendor_call() -> None:
    vendor = Vendor([5.0])
    upstream, _ = make_upstream(vendor, timeout_s=10.0)
    started = time.monotonic()
    with pytest.raises(GatewayError) as caught:
        await call(upstream, deadline_s=0.1)
    assert (caught.value.code, caught.value.reason) == (C.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")
    assert time.monotonic() - started < 1.0
    assert vendor.calls == 1


@pytest.mark.parametrize(("deadline_s", "attempts"), [(0.04, 1), (5.0, 3)])
async def test_no_retry_starts_without_time_for_it(deadline_s: float, attempts: int) -> None:
    vendor = Vendor([HTML_502])
    upstream, _ = make_upstream(vendor)
    # A retry needs its backoff plus 50 ms left before the deadline.
    with pytest.raises(GatewayError):
        await call(upstream, deadline_s=deadline_s)
    assert vendor.calls == attempts


def test_the_deadline_margin_is_kept_back() -> None:
    upstream, _ = make_upstream(Vendor([json_reply(OK)]))
    with pytest.raises(GatewayError) as caught:
        upstream.deadline(0.01)  # less than the 50 ms margin
    assert caught.value.code == C.DEADLINE_EXCEEDED
    assert upstream.deadline(None) is None
    deadline = upstream.deadline(1.0)
    assert deadline is not None
    assert 0.9 < deadline - time.monotonic() <= 0.95


async def test_the_breaker_opens_then_fails_fast_then_probes() -> None:
    vendor = Vendor([HTML_502, HTML_502, json_reply(OK)])
    upstream, metrics = make_upstream(
        vendor, max_attempts=1, breaker_failures=2, breaker_open_s=0.2
    )
    for _ in range(2):
        with pytest.raises(GatewayError):
            await call(upstream)
    with pytest.raises(GatewayError) as caught:
        await call(upstream)
    assert caught.value.reason == "CIRCUIT_OPEN"
    assert 0 < caught.value.retry_delay_s <= 0.2
    assert vendor.calls == 2  # failed fast: nothing sent
    state = {"vendor": "linkface", "endpoint": "liveness_hack_detect"}
    assert metrics.registry.get_sample_value("liveness_gateway_circuit_state", state) == 2
    await asyncio.sleep(0.25)
    assert (await call(upstream)).score == 0.25  # the probe closes it
    assert metrics.registry.get_sample_value("liveness_gateway_circuit_state", state) == 0


@pytest.mark.parametrize(
    ("reply", "opens"),
    [(NO_FACE, False), (MISSING_SOURCE, True), (HTML_502, True)],
    ids=["the caller's fault", "the vendor misreads the request", "the vendor fails"],
)
async def test_what_counts_against_the_vendor(reply: VendorReply, opens: bool) -> None:
    vendor = Vendor([reply])
    upstream, _ = make_upstream(vendor, max_attempts=1, breaker_failures=2)
    for _ in range(3):
        with pytest.raises(GatewayError) as caught:
            await call(upstream)
    assert (caught.value.reason == "CIRCUIT_OPEN") is opens


async def test_a_callers_url_gets_the_vendors_download_limit() -> None:
    upstream, _ = make_upstream(Vendor([json_reply(OK)]), timeout_s=2.0)
    cfg = VendorConfig("linkface", "http://vendor.invalid", "id", "s3cret")
    by_url = linkface.DETECT.build(cfg, Source("url", text="http://127.0.0.1/x"))
    by_data = linkface.DETECT.build(cfg, Source("data", data=b"x"))
    assert upstream.timeout_for(linkface.DETECT, by_data) == 2.0
    assert upstream.timeout_for(linkface.DETECT, by_url) == 2.0 + 5.0


async def test_vendor_concurrency_is_shed_not_queued() -> None:
    release = asyncio.Event()

    async def slow(request: VendorRequest) -> VendorReply:
        await release.wait()
        return json_reply(OK)

    transport_calls: list[VendorRequest] = []

    async def counting(request: VendorRequest) -> VendorReply:
        transport_calls.append(request)
        return await slow(request)

    upstream, metrics = make_upstream(
        counting, vendor_concurrency="fixed", vendor_max_concurrency=1
    )
    first = asyncio.create_task(call(upstream))
    await asyncio.sleep(0.01)
    with pytest.raises(GatewayError) as caught:
        await call(upstream)
    assert (caught.value.code, caught.value.reason) == (C.UNAVAILABLE, "OVERLOADED")
    assert caught.value.retry_delay_s is not None
    release.set()
    assert (await first).score == 0.25
    assert len(transport_calls) == 1
    shed = metrics.registry.get_sample_value(
        "liveness_gateway_shed_total", {"cause": "vendor_concurrency"}
    )
    assert shed == 1


async def test_the_vendor_rate_limit_refuses_with_a_retry_delay() -> None:
    vendor = Vendor([json_reply(OK)])
    upstream, _ = make_upstream(vendor, vendor_rate_per_s=2.0, vendor_rate_burst=1)
    await call(upstream)
    with pytest.raises(GatewayError) as caught:
        await call(upstream)
    assert (caught.value.code, caught.value.reason) == (
        C.RESOURCE_EXHAUSTED,
        "GATEWAY_RATE_LIMITED",
    )
    assert caught.value.retry_delay_s == pytest.approx(0.5)
    assert vendor.calls == 1


async def test_retries_stop_when_the_retry_budget_is_spent() -> None:
    vendor = Vendor([HTML_502])
    upstream, _ = make_upstream(vendor, breaker_failures=100, retry_max_tokens=4)
    for _ in range(3):
        with pytest.raises(GatewayError):
            await call(upstream)
    # 4 tokens, each failure costs one, retries only while more than 2 are left: the first
    # call gets one retry (4 -> 3 -> 2), the next two none.
    assert vendor.calls == 2 + 1 + 1


async def test_oversized_replies_are_refused_before_parsing() -> None:
    big = VendorReply("linkface", 200, b'{"status": "OK", "pad": "' + b"x" * 70_000 + b'"}')
    upstream, _ = make_upstream(Vendor([big]), max_attempts=1)
    with pytest.raises(GatewayError) as caught:
        await call(upstream)
    assert caught.value.reason == errors.VENDOR_BAD_REPLY
    assert "larger than" in caught.value.message


async def test_the_whole_gateway_runs_over_the_in_memory_transport(make_gateway, sandbox) -> None:
    """The seam at the server: start() takes the transport, so a test drives real gRPC
    calls through the real servicer and Upstream with no vendor socket at all."""
    vendor = Vendor([HTML_502, json_reply(OK)])
    transport = InMemoryTransport(vendor)
    gateway = await make_gateway(transport=transport)
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as ch:
        reply = await LivenessCheckStub(ch).Detect(pb.DetectRequest(liveness_data=b"blob"))
    assert reply.score == 0.25
    assert reply.vendor_request_id == "TID1"
    assert vendor.calls == 2  # the 502 was retried
    sent = transport.sent[-1]
    assert sent.endpoint == "liveness_hack_detect"
    assert {p.name: p.value for p in sent.parts}["liveness_data_file"] == b"blob"
    assert sandbox.state.total() == 0  # nothing reached a socket
