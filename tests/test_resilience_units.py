"""The resilience pieces on their own: backoff, retry throttle, breaker, shedder, policy."""

from __future__ import annotations

import random

import grpc
from liveness_gateway import errors
from liveness_gateway.resilience import (
    Backoff,
    BreakerState,
    CircuitBreaker,
    RetryThrottle,
)
from liveness_gateway.upstream import retryable, vendor_health


def test_backoff_is_jittered_exponential_and_capped() -> None:
    backoff = Backoff(base_s=0.1, cap_s=0.5)
    rng = random.Random(7)
    for retry, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (10, 0.5)):
        delays = [backoff.delay(retry, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the range, not a constant
        assert len(set(delays)) > 150


def test_retry_throttle_follows_grfc_a6() -> None:
    throttle = RetryThrottle(max_tokens=10, token_ratio=0.1)
    assert throttle.allows_retry()
    for _ in range(5):
        throttle.failure()
    assert throttle.tokens == 5
    assert not throttle.allows_retry()  # retries need more than half the tokens
    throttle.success()
    assert throttle.allows_retry()
    for _ in range(200):
        throttle.success()
    assert throttle.tokens == 10


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = FakeClock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(failure_threshold=3, open_s=2.0, clock=clock, on_change=changes.append)
    for _ in range(2):
        assert breaker.try_acquire() is not None
        breaker.failure()
    breaker.success()  # resets the consecutive count
    for _ in range(3):
        assert breaker.try_acquire() is not None
        breaker.failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.try_acquire() is None
    clock.now += 1.5
    assert breaker.retry_after_s() == 0.5
    clock.now += 0.6
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_acquire() is not None  # the one probe
    assert breaker.try_acquire() is None  # nobody else while it runs
    breaker.failure()  # probe failed: open again
    assert breaker.state is BreakerState.OPEN
    clock.now += 2.0
    assert breaker.try_acquire() is not None
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert changes == [
        BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN,
        BreakerState.HALF_OPEN, BreakerState.CLOSED,
    ]  # fmt: skip


def test_breaker_probe_released_without_verdict() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, open_s=1.0, clock=clock)
    before = breaker.try_acquire()  # a call that started while closed
    assert before is not None
    assert not before.probe
    breaker.failure()
    clock.now += 1.0
    probe = breaker.try_acquire()
    assert probe is not None
    assert probe.probe
    # The older call ends with nothing to say about the vendor (its caller's deadline, say):
    # that must not let a second probe in while the first is still out.
    breaker.release(before)
    assert breaker.try_acquire() is None
    breaker.release(probe)  # the probe itself was cancelled: the next call may probe
    assert breaker.try_acquire() is not None


def test_retry_policy() -> None:
    http_502 = errors.from_vendor_http("linkface", 502, retry_after=None)
    internal = errors.from_vendor_status(
        "linkface", "INTERNAL_ERROR", http_status=500, vendor_request_id=None,
        vendor_reason=None, retry_after=None,
    )  # fmt: skip
    no_face = errors.from_vendor_status(
        "linkface", "NO_FACE_DETECTED", http_status=400, vendor_request_id=None,
        vendor_reason=None, retry_after=None,
    )  # fmt: skip
    download_timeout = errors.from_vendor_status(
        "linkface", "DOWNLOAD_TIMEOUT", http_status=400, vendor_request_id=None,
        vendor_reason=None, retry_after=None,
    )  # fmt: skip
    reset = errors.unreachable("linkface")
    refused = errors.unreachable("linkface", never_sent=True)
    slow = errors.vendor_timeout("linkface")
    garbage_200 = errors.bad_reply("linkface", "x", http_status=200)
    for err in (http_502, internal, reset, refused):
        assert retryable(err, idempotent=True)
    for err in (no_face, download_timeout, slow, garbage_200):
        assert not retryable(err, idempotent=True)
    # Upload: only what provably never left
    assert retryable(refused, idempotent=False)
    for err in (http_502, internal, reset):
        assert not retryable(err, idempotent=False)
    # health accounting: the caller's slow url says nothing about the vendor
    assert vendor_health(http_502) is False
    assert vendor_health(slow) is False
    assert vendor_health(slow, caller_url=True) is None  # the caller's url may be the slow part
    assert vendor_health(download_timeout) is None
    assert vendor_health(no_face) is True
    assert http_502.code == grpc.StatusCode.UNAVAILABLE
