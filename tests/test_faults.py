"""Fault injection: sandbox vectors and a real toxiproxy between gateway and sandbox.

For each fault: the code and ErrorInfo reason the caller sees, how many requests reached the
vendor, and the metric that shows it. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.config import ResilienceConfig
from liveness_gateway.sandbox import RunningSandbox
from liveness_gateway.server import RunningGateway

from tests.conftest import CHANNEL_OPTIONS
from tests.metrics_text import sample, scrape
from tests.status import failure_of
from tests.toxiproxy import Proxy, ToxiproxyServer

C = grpc.StatusCode
DETECT = {"vendor": "linkface", "endpoint": "liveness_hack_detect"}
UPLOAD = {"vendor": "linkface", "endpoint": "upload_liveness_data"}
DETECT_PATH = "/hackness/liveness_hack_detect"
UPLOAD_PATH = "/resources/upload_liveness_data"
# Long enough for twenty fast-failing calls while open, short enough for the fast suite.
_BREAKER_OPEN_S = 2.0


@pytest.fixture(scope="module")
def toxiproxy() -> Iterator[ToxiproxyServer]:
    server = ToxiproxyServer()
    yield server
    server.stop()


@pytest.fixture
def proxy(toxiproxy: ToxiproxyServer, sandbox: RunningSandbox) -> Iterator[Proxy]:
    upstream = sandbox.url.removeprefix("http://")
    created = toxiproxy.proxy(f"vendor-{time.monotonic_ns()}", upstream)
    yield created
    created.delete()


class Rig:
    """A gateway (behind a proxy or not), its stub, and ways to read what happened."""

    def __init__(self, gateway: RunningGateway, sandbox: RunningSandbox) -> None:
        self.gateway = gateway
        self.sandbox = sandbox
        self.channel = grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS)
        self.stub = liveness_pb2_grpc.LivenessCheckStub(self.channel)

    async def metrics(self) -> str:
        assert self.gateway.metrics_port
        return await scrape(self.gateway.metrics_port)

    def vendor_requests(self, path: str = DETECT_PATH) -> int:
        return self.sandbox.state.requests[path]

    async def close(self) -> None:
        await self.channel.close()


@pytest.fixture
async def rig_factory(make_gateway: Any, sandbox: RunningSandbox) -> AsyncIterator[Any]:
    rigs: list[Rig] = []

    async def make(
        base_url: str | None = None, gateway: dict[str, Any] | None = None, **resilience: Any
    ) -> Rig:
        overrides: dict[str, Any] = {
            "resilience": ResilienceConfig(**resilience),
            **(gateway or {}),
        }
        if base_url is not None:
            overrides["linkface"] = {"base_url": base_url, "timeout_s": 1.0}
            overrides["accuauth"] = {"base_url": base_url, "timeout_s": 1.0}
        rig = Rig(await make_gateway(**overrides), sandbox)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.close()


async def detect(rig: Rig, data: bytes, **kw: Any) -> Any:
    return await rig.stub.Detect(pb.DetectRequest(liveness_data=data), **kw)


async def detect_failure(rig: Rig, data: bytes, **kw: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detect(rig, data, **kw)
    return caught.value


# --- latency and silence ---------------------------------------------------------------------


async def test_vendor_latency_beyond_the_callers_deadline(rig_factory, proxy: Proxy) -> None:
    rig = await rig_factory(proxy.url)
    proxy.toxic("latency", latency=1500)
    err = await detect_failure(rig, b"SANDBOX:score=0.1", timeout=0.5)
    assert err.code() == C.DEADLINE_EXCEEDED
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_vendor_request_duration_seconds_count",
                  outcome="deadline", **DETECT) == 1  # fmt: skip
    assert sample(text, "liveness_gateway_vendor_retries_total", **DETECT) == 0


async def test_vendor_that_never_answers(rig_factory, proxy: Proxy) -> None:
    rig = await rig_factory(proxy.url)  # vendor timeout 1 s, no caller deadline
    proxy.toxic("timeout", timeout=0)  # swallow everything, never close
    started = time.monotonic()
    err = await detect_failure(rig, b"SANDBOX:score=0.1")
    assert time.monotonic() - started < 5
    failure = failure_of(err)
    assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "VENDOR_TIMEOUT")
    text = await rig.metrics()
    # not retried: a silent vendor gets no second request
    assert sample(text, "liveness_gateway_vendor_request_duration_seconds_count",
                  outcome="timeout", **DETECT) == 1  # fmt: skip
    assert (
        sample(text, "liveness_gateway_vendor_errors_total", status="VENDOR_TIMEOUT", **DETECT) == 1
    )


# --- broken connections ----------------------------------------------------------------------


async def test_connection_reset_is_retried_then_unavailable(rig_factory, proxy: Proxy) -> None:
    rig = await rig_factory(proxy.url)
    proxy.toxic("reset_peer", timeout=0)
    failure = failure_of(await detect_failure(rig, b"SANDBOX:score=0.1"))
    assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "VENDOR_UNREACHABLE")
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_vendor_request_duration_seconds_count",
                  outcome="unreachable", **DETECT) == 3  # fmt: skip
    assert sample(text, "liveness_gateway_vendor_retries_total", **DETECT) == 2
    # Each attempt reached the vendor; the reply was reset on its way back.
    assert rig.vendor_requests() == 3


async def test_reset_mid_upload_is_not_retried(rig_factory, proxy: Proxy) -> None:
    rig = await rig_factory(proxy.url)
    proxy.toxic("limit_data", stream="upstream", bytes=64 * 1024)  # cut the request body
    payload = b"SANDBOX:score=0.1\n" + b"x" * (1024 * 1024)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await rig.stub.Upload(pb.UploadRequest(liveness_data=payload))
    failure = failure_of(caught.value)
    assert failure.code == C.UNAVAILABLE
    assert failure.info.reason in ("VENDOR_UNREACHABLE", "VENDOR_BAD_REPLY")
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_vendor_retries_total", **UPLOAD) == 0
    assert rig.vendor_requests(UPLOAD_PATH) <= 1


async def test_upload_retried_when_it_never_left(rig_factory, proxy: Proxy) -> None:
    rig = await rig_factory(proxy.url)
    proxy.set_enabled(False)  # nothing listens: connect refused
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await rig.stub.Upload(pb.UploadRequest(liveness_data=b"data"))
    assert failure_of(caught.value).info.reason == "VENDOR_UNREACHABLE"
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_vendor_retries_total", **UPLOAD) == 2


async def test_truncated_body_is_retried_then_unavailable(rig_factory) -> None:
    rig = await rig_factory()
    failure = failure_of(await detect_failure(rig, b"SANDBOX:body=truncated"))
    assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "VENDOR_BAD_REPLY")
    assert rig.vendor_requests() == 3
    text = await rig.metrics()
    assert (
        sample(text, "liveness_gateway_vendor_errors_total", status="VENDOR_BAD_REPLY", **DETECT)
        == 3
    )


async def test_keepalive_closed_by_vendor_between_requests(rig_factory, proxy: Proxy) -> None:
    rig = await rig_factory(proxy.url)
    for round_ in range(3):
        reply = await detect(rig, b"SANDBOX:score=0.3")
        assert reply.score == pytest.approx(0.3)
        proxy.set_enabled(False)  # closes every open connection, as an idle timeout would
        proxy.set_enabled(True)
        await asyncio.sleep(0.05 * round_)
    reply = await detect(rig, b"SANDBOX:score=0.4")
    assert reply.score == pytest.approx(0.4)
    assert rig.vendor_requests() == 4
    text = await rig.metrics()
    handled = {
        "grpc_service": "liveness.v1.LivenessCheck",
        "grpc_method": "Detect",
        "grpc_type": "unary",
    }
    assert sample(text, "grpc_server_handled_total", grpc_code="OK", **handled) == 4


# --- HTTP failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("http", [502, 503, 504])
async def test_html_5xx_is_retried_then_unavailable(rig_factory, http: int) -> None:
    rig = await rig_factory()
    failure = failure_of(await detect_failure(rig, f"SANDBOX:http={http}".encode()))
    assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "VENDOR_HTTP_ERROR")
    assert failure.info.metadata["httpStatus"] == str(http)
    assert rig.vendor_requests() == 3
    text = await rig.metrics()
    assert (
        sample(text, "liveness_gateway_vendor_errors_total", status="VENDOR_HTTP_ERROR", **DETECT)
        == 3
    )


async def test_429_with_retry_after_is_not_retried(rig_factory) -> None:
    rig = await rig_factory()
    failure = failure_of(await detect_failure(rig, b"SANDBOX:http=429;retry_after=3"))
    assert (failure.code, failure.info.reason) == (C.RESOURCE_EXHAUSTED, "RATE_LIMIT_EXCEEDED")
    assert failure.retry_delay_s == pytest.approx(3.0)
    assert rig.vendor_requests() == 1
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_vendor_retries_total", **DETECT) == 0


@pytest.mark.parametrize("status", ["RATE_LIMIT_EXCEEDED", "OUT_OF_QUOTA"])
async def test_quota_errors_are_not_retried(rig_factory, status: str) -> None:
    rig = await rig_factory()
    failure = failure_of(await detect_failure(rig, f"SANDBOX:status={status}".encode()))
    assert (failure.code, failure.info.reason) == (C.RESOURCE_EXHAUSTED, status)
    assert rig.vendor_requests() == 1
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_vendor_errors_total", status=status, **DETECT) == 1
    assert sample(text, "liveness_gateway_vendor_retries_total", **DETECT) == 0


async def test_500_storm_opens_breaker_fails_fast_and_recovers(rig_factory) -> None:
    rig = await rig_factory(breaker_failures=5, breaker_open_s=_BREAKER_OPEN_S)
    storm = b"SANDBOX:status=INTERNAL_ERROR;delay_ms=200"
    for _ in range(2):  # 3 + 2 attempts: the fifth failure opens the breaker
        failure = failure_of(await detect_failure(rig, storm))
        assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "INTERNAL_ERROR")
    opened_by = time.monotonic()
    assert rig.vendor_requests() == 5
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_circuit_state", **DETECT) == 2

    latencies = []
    for _ in range(20):
        started = time.monotonic()
        failure = failure_of(await detect_failure(rig, storm))
        latencies.append(time.monotonic() - started)
        assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "CIRCUIT_OPEN")
        assert failure.retry_delay_s is not None
        assert 0 < failure.retry_delay_s <= _BREAKER_OPEN_S
    assert rig.vendor_requests() == 5, "an open breaker sends nothing to the vendor"
    # Failing fast: open-circuit calls are quicker than one vendor round trip (200 ms).
    assert sorted(latencies)[len(latencies) // 2] < 0.2
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_shed_total", cause="circuit_open") == 20

    # half-open once _BREAKER_OPEN_S have passed: one probe goes through, succeeds, closes
    await asyncio.sleep(opened_by + _BREAKER_OPEN_S + 0.1 - time.monotonic())
    reply = await detect(rig, b"SANDBOX:score=0.2")
    assert reply.score == pytest.approx(0.2)
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_circuit_state", **DETECT) == 0
    assert (await detect(rig, b"SANDBOX:score=0.3")).score == pytest.approx(0.3)
    assert rig.vendor_requests() == 7


async def test_retry_budget_stops_retries_when_failing_broadly(rig_factory) -> None:
    rig = await rig_factory(breaker_failures=1000)  # isolate the budget from the breaker
    for _ in range(6):
        await detect_failure(rig, b"SANDBOX:http=503")
    text = await rig.metrics()
    retries = sample(text, "liveness_gateway_vendor_retries_total", **DETECT)
    # A6 throttling, 10 tokens, a failure costs 1, retries only above 5: the first call
    # retries twice (10 -> 7), the second once (7 -> 5), then no more.
    assert retries == 3
    assert rig.vendor_requests() == 6 + retries


async def test_retries_spend_the_vendor_rate(rig_factory) -> None:
    rig = await rig_factory(vendor_rate_per_s=0.1, vendor_rate_burst=2)
    failure = failure_of(await detect_failure(rig, b"SANDBOX:http=503"))
    # Two tokens: the call and one retry; the third attempt would exceed the contract rate.
    assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "VENDOR_HTTP_ERROR")
    assert rig.vendor_requests() == 2


async def test_connect_that_never_completes_is_retried_and_unavailable(rig_factory) -> None:
    # A listener whose backlog is full: SYNs go unanswered, the connection never completes.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.2)
        rig = await rig_factory(f"http://127.0.0.1:{port}", backoff_base_s=0.01)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rig.stub.Detect(pb.DetectRequest(liveness_data=b"x"), timeout=20)
        failure = failure_of(caught.value)
        # Not the caller's deadline (it had time left): the vendor could not be reached.
        assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "VENDOR_UNREACHABLE")
        assert time.monotonic() - started < 15
        text = await rig.metrics()
        # nothing was sent, so even a non-idempotent call may be retried: all 3 attempts
        assert sample(text, "liveness_gateway_vendor_retries_total", **DETECT) == 2
    finally:
        for sock in (*fillers, listener):
            sock.close()


# --- the caller goes away --------------------------------------------------------------------


async def test_caller_cancellation_leaves_nothing_in_flight(rig_factory) -> None:
    rig = await rig_factory()
    call = rig.stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:delay_ms=3000"))
    deadline = time.monotonic() + 5
    while rig.sandbox.state.in_flight == 0:
        assert time.monotonic() < deadline, "the vendor never saw the request"
        await asyncio.sleep(0.01)
    call.cancel()
    while rig.sandbox.state.in_flight or rig.gateway.metrics.in_flight(**DETECT)._value.get():
        assert time.monotonic() < deadline, "a vendor request was left in flight"
        await asyncio.sleep(0.01)
    assert time.monotonic() < deadline - 2, "cancellation was not prompt"
    # The pool is usable again straight away.
    assert (await detect(rig, b"SANDBOX:score=0.5")).score == pytest.approx(0.5)
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_vendor_requests_in_flight", **DETECT) == 0


# --- overload --------------------------------------------------------------------------------


async def test_overload_at_ten_times_the_cap_sheds_at_once(rig_factory) -> None:
    cap = 5
    # The burst is on one connection: it must meet the in-flight cap, not the HTTP/2 stream
    # limit (tests/test_memory.py), which refuses streams past it.
    rig = await rig_factory(gateway={"max_streams_per_connection": 100}, max_in_flight_rpcs=cap)
    payload = b"SANDBOX:delay_ms=300\n" + b"x" * (256 * 1024)

    started = time.monotonic()
    results = await asyncio.gather(
        *(detect(rig, payload, timeout=10) for _ in range(cap * 10)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    ok = [r for r in results if not isinstance(r, BaseException)]
    shed = [failure_of(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) + len(shed) == cap * 10
    assert 1 <= len(ok) <= cap
    for failure in shed:
        assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "OVERLOADED")
        assert failure.retry_delay_s == pytest.approx(0.5)
    assert rig.vendor_requests() == len(ok)
    assert elapsed < 5, "shed calls were queued instead of refused"
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_shed_total", cause="max_in_flight") == len(shed)


async def test_vendor_concurrency_limit_sheds(rig_factory) -> None:
    rig = await rig_factory(vendor_concurrency="fixed", vendor_max_concurrency=2)
    results = await asyncio.gather(
        *(detect(rig, b"SANDBOX:delay_ms=300") for _ in range(6)), return_exceptions=True
    )
    shed = [failure_of(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(shed) == 4
    assert {(f.code, f.info.reason, f.info.metadata["vendor"]) for f in shed} == {
        (C.UNAVAILABLE, "OVERLOADED", "linkface")
    }
    assert rig.vendor_requests() == 2


async def test_vendor_rate_limit_token_bucket(rig_factory) -> None:
    # 0.1/s: no token comes back during the test, however slow the machine is.
    rig = await rig_factory(vendor_rate_per_s=0.1, vendor_rate_burst=2)
    results = [await detect(rig, b"SANDBOX:score=0.1") for _ in range(2)]
    assert len(results) == 2
    failure = failure_of(await detect_failure(rig, b"SANDBOX:score=0.1"))
    assert (failure.code, failure.info.reason) == (C.RESOURCE_EXHAUSTED, "GATEWAY_RATE_LIMITED")
    assert failure.retry_delay_s == pytest.approx(10.0)
    assert rig.vendor_requests() == 2
    text = await rig.metrics()
    assert sample(text, "liveness_gateway_shed_total", cause="vendor_rate") == 1
