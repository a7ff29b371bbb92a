"""The adaptive vendor concurrency limit: the limiter alone, then through Upstream over the
in-memory transport (no sockets), with a vendor whose latency grows past its capacity."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from liveness_gateway import errors
from liveness_gateway.concurrency import FixedLimiter, GradientLimiter, size_class
from liveness_gateway.config import ConfigError, ResilienceConfig
from liveness_gateway.errors import GatewayError
from liveness_gateway.validation import Source
from liveness_gateway.vendors import linkface
from liveness_gateway.vendors.base import VendorReply, VendorRequest

from tests.test_upstream import OK, call, json_reply, make_upstream

DETECT, UPLOAD = linkface.DETECT.name, linkface.UPLOAD.name


def limit_gauge(metrics: Any, endpoint: str = DETECT) -> float | None:
    return metrics.registry.get_sample_value(
        "liveness_gateway_vendor_concurrency_limit", {"vendor": "linkface", "endpoint": endpoint}
    )


# --- the limiter alone ------------------------------------------------------------------------


def test_it_starts_at_the_maximum_and_stays_there_while_latency_is_flat() -> None:
    limiter = GradientLimiter(min_limit=4, max_limit=100)
    assert limiter.limit == 100
    for _ in range(500):
        limiter.sample(1.0, in_flight_at_start=100)
    assert limiter.limit == 100


class Clock:
    """Time that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_it_grows_under_a_fast_vendor_and_shrinks_when_latency_rises() -> None:
    clock = Clock()
    limiter = GradientLimiter(min_limit=4, max_limit=1000, initial=10, clock=clock)
    for _ in range(300):
        limiter.sample(0.010, in_flight_at_start=limiter.limit)  # at the limit, 10 ms
    grown = limiter.limit
    assert grown > 30, "a vendor answering at its unloaded latency must get more"
    for _ in range(30):
        clock.now += 0.004  # 10 answers per 40 ms round trip
        limiter.sample(0.040, in_flight_at_start=limiter.limit)  # 4x the baseline
    assert limiter.limit < grown / 4


def test_it_decreases_at_most_once_per_round_trip() -> None:
    clock = Clock()
    limiter = GradientLimiter(min_limit=4, max_limit=100, clock=clock)
    limiter.sample(0.1, in_flight_at_start=1)
    for _ in range(1000):  # a thousand slow answers within one round trip
        limiter.sample(1.0, in_flight_at_start=100)
    assert limiter.limit == 50  # halved (the gradient's floor) once


@pytest.mark.parametrize(("slack_s", "sheds"), [(0.020, False), (0.0, True)])
def test_the_gateways_own_delays_within_the_slack_are_not_queueing(
    slack_s: float, sheds: bool
) -> None:
    """A 1 ms vendor behind a gateway whose CPU is saturated: every answer arrives 10-30 ms
    late because of the gateway's own event loop (make bench at 16 in flight). With the
    slack (latency compared with 20 ms, not 1 ms) the limit stays; without it the same
    samples read as 10x queueing."""
    clock = Clock()
    limiter = GradientLimiter(min_limit=8, max_limit=512, slack_s=slack_s, clock=clock)
    limiter.sample(0.001, in_flight_at_start=1)  # the unloaded latency
    for i in range(2000):
        clock.now += 0.001
        limiter.sample(0.011 + 0.019 * (i % 10 == 0), in_flight_at_start=16)
    assert (limiter.limit < 16) is sheds, limiter.limit


def test_a_vendor_queueing_beyond_the_slack_still_shrinks_the_limit() -> None:
    clock = Clock()
    limiter = GradientLimiter(min_limit=4, max_limit=512, slack_s=0.020, clock=clock)
    limiter.sample(0.200, in_flight_at_start=1)
    for _ in range(100):
        clock.now += 0.050
        limiter.sample(0.600, in_flight_at_start=60)  # 3x a 200 ms vendor
    assert limiter.limit < 60


def test_latency_within_the_tolerance_is_not_queueing() -> None:
    clock = Clock()
    limiter = GradientLimiter(min_limit=4, max_limit=200, initial=50, tolerance=1.5, clock=clock)
    limiter.sample(0.100, in_flight_at_start=50)
    for _ in range(2000):
        limiter.sample(0.145, in_flight_at_start=limiter.limit)
    assert limiter.limit == 200
    for _ in range(500):
        clock.now += 0.1
        limiter.sample(0.200, in_flight_at_start=limiter.limit)  # 2x > 1.5x
    assert limiter.limit < 60


def test_it_stays_within_min_and_max() -> None:
    now = [0.0]
    limiter = GradientLimiter(min_limit=5, max_limit=40, initial=1000, clock=lambda: now[0])
    assert limiter.limit == 40
    limiter.sample(0.01, in_flight_at_start=1)
    seen = set()
    for _ in range(300):  # a vendor with room for 5 that also times out now and then
        load = limiter.limit
        limiter.sample(0.01 * max(1.0, load / 5), in_flight_at_start=load)
        now[0] += 1.0
        limiter.drop()
        seen.add(limiter.limit)
    assert min(seen) == 5
    assert max(seen) <= 40
    for _ in range(1000):
        limiter.sample(0.001, in_flight_at_start=limiter.limit)
    assert limiter.limit == 40


def test_an_app_limited_sample_does_not_grow_the_limit() -> None:
    limiter = GradientLimiter(min_limit=4, max_limit=1000, initial=100)
    for _ in range(100):
        limiter.sample(0.01, in_flight_at_start=10)  # 10 of 100 in use
    assert limiter.limit == 100


def test_the_baseline_is_remeasured_at_the_minimum_only() -> None:
    limiter = GradientLimiter(min_limit=4, max_limit=100, initial=50)
    limiter.sample(0.1, in_flight_at_start=50)
    limiter.sample(0.3, in_flight_at_start=50)  # queueing: the baseline stays
    assert limiter.baseline_s() == pytest.approx(0.1)
    limiter.sample(0.3, in_flight_at_start=4)  # at the minimum: what the vendor takes now
    assert limiter.baseline_s() == pytest.approx(0.3)
    limiter.sample(0.2, in_flight_at_start=50)  # a faster answer lowers it at any load
    assert limiter.baseline_s() == pytest.approx(0.2)


def test_each_size_class_has_its_own_baseline() -> None:
    limiter = GradientLimiter(min_limit=4, max_limit=100)
    small, large = size_class(1024), size_class(5 * 1024 * 1024)
    assert (small, large) == (0, 4)
    for _ in range(100):
        limiter.sample(0.05, 100, small)
        limiter.sample(0.50, 100, large)  # slower because larger, not because queued
    assert limiter.limit == 100
    assert limiter.baseline_s(large) == pytest.approx(0.5)


def test_drops_back_off_once_per_episode() -> None:
    now = [0.0]
    limiter = GradientLimiter(min_limit=1, max_limit=100, clock=lambda: now[0])
    limiter.sample(1.0, in_flight_at_start=100)
    for _ in range(10):  # ten timeouts from the same moment
        limiter.drop()
    assert limiter.limit == 90
    now[0] += 1.5
    limiter.drop()
    assert limiter.limit == 81


def test_the_fixed_limiter_ignores_latency() -> None:
    limiter = FixedLimiter(2)
    assert limiter.try_acquire()
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    limiter.sample(100.0, 2)
    limiter.drop()
    limiter.release()
    assert limiter.try_acquire()
    assert limiter.limit == 2


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"vendor_concurrency": "elastic"}, "vendor_concurrency"),
        ({"vendor_concurrency_min": 0}, "vendor_concurrency_min"),
        ({"vendor_concurrency_min": 50, "vendor_concurrency_max": 10}, "vendor_concurrency_min"),
        ({"vendor_latency_tolerance": 0.9}, "vendor_latency_tolerance"),
    ],
)
def test_the_settings_are_checked(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ResilienceConfig(**settings)
    assert caught.value.field == problem


# --- through Upstream, over the in-memory transport ---------------------------------------------


class QueueingVendor:
    """Answers after ``service_s`` while at most ``capacity`` requests are in flight; beyond
    it, requests queue for a free slot (a server with ``capacity`` workers)."""

    def __init__(self, capacity: int, service_s: float) -> None:
        self.slots = asyncio.Semaphore(capacity)
        self.service_s = service_s
        self.latencies: list[float] = []

    async def __call__(self, request: VendorRequest) -> VendorReply:
        started = time.monotonic()
        async with self.slots:
            await asyncio.sleep(self.service_s)
        self.latencies.append(time.monotonic() - started)
        return json_reply(OK)


async def closed_loop(upstream: Any, callers: int, duration_s: float) -> tuple[int, int]:
    """``callers`` loops calling for ``duration_s``: (served, shed). A shed caller waits a
    little before calling again, as a retrying client would."""
    served = shed = 0
    end = time.monotonic() + duration_s

    async def one() -> None:
        nonlocal served, shed
        while time.monotonic() < end:
            try:
                await call(upstream)
                served += 1
            except GatewayError as err:
                if err.reason != errors.OVERLOADED:
                    raise
                shed += 1
                await asyncio.sleep(0.005)

    await asyncio.gather(*(one() for _ in range(callers)))
    return served, shed


async def test_a_vendor_with_ample_capacity_gets_every_caller() -> None:
    # 500 ms: long enough that the event loop's own delays under 200 callers (on a busy
    # machine, this process descheduled for a while) stay within the tolerance
    vendor = QueueingVendor(capacity=1000, service_s=0.5)
    upstream, metrics = make_upstream(vendor, vendor_concurrency_min=4, vendor_concurrency_max=300)
    served, shed = await closed_loop(upstream, callers=200, duration_s=1.2)
    assert shed == 0
    assert served >= 2 * 200
    assert limit_gauge(metrics) == 300


async def test_a_vendor_past_its_capacity_keeps_near_its_unloaded_latency() -> None:
    vendor = QueueingVendor(capacity=20, service_s=0.05)
    upstream, metrics = make_upstream(vendor, vendor_concurrency_min=2, vendor_concurrency_max=300)
    await closed_loop(upstream, callers=100, duration_s=0.5)  # the first burst queues
    vendor.latencies.clear()
    served, shed = await closed_loop(upstream, callers=100, duration_s=1.0)
    assert shed > served, "the excess is shed"
    latencies = sorted(vendor.latencies)
    p50 = latencies[len(latencies) // 2]
    assert p50 < 2 * vendor.service_s, f"p50 {p50 * 1000:.0f} ms"
    limit = limit_gauge(metrics)
    assert limit is not None
    assert 2 <= limit <= 2 * 20


async def test_timeouts_and_rate_limits_back_off_but_caller_deadlines_do_not() -> None:
    replies: list[VendorReply | float] = [json_reply(OK)]

    async def vendor(request: VendorRequest) -> VendorReply:
        step = replies[0]
        if isinstance(step, float):
            await asyncio.sleep(step)
            return json_reply(OK)
        return step

    upstream, _ = make_upstream(vendor, timeout_s=0.2, vendor_concurrency_max=100, max_attempts=1)
    await call(upstream)
    limiter = upstream.limiter("linkface", DETECT)
    assert limiter.limit == 100
    replies[0] = 0.4  # slower than both the caller's deadline and the vendor's timeout
    with pytest.raises(GatewayError) as caught:
        await call(upstream, deadline_s=0.1)
    assert caught.value.reason == errors.DEADLINE_EXCEEDED
    assert limiter.limit == 100, "the caller's deadline says nothing of the vendor"
    with pytest.raises(GatewayError) as caught:
        await call(upstream, deadline_s=5.0)
    assert caught.value.reason == errors.VENDOR_TIMEOUT
    assert limiter.limit == 90
    replies[0] = json_reply({"status": "RATE_LIMIT_EXCEEDED", "reason": "slow down"}, 429)
    await asyncio.sleep(0.05)  # a new episode: longer than the baseline latency
    with pytest.raises(GatewayError) as caught:
        await call(upstream)
    assert caught.value.reason == errors.RATE_LIMIT_EXCEEDED
    assert limiter.limit == 81


async def test_the_fixed_mode_is_one_cap_per_vendor() -> None:
    async def vendor(request: VendorRequest) -> VendorReply:
        return json_reply(OK)

    upstream, metrics = make_upstream(vendor, vendor_concurrency="fixed", vendor_max_concurrency=7)
    assert upstream.limiter("linkface", DETECT) is upstream.limiter("linkface", UPLOAD)
    assert limit_gauge(metrics) == 7


async def test_calls_through_the_callers_url_teach_the_limit_nothing() -> None:
    """The vendor's latency then includes downloading the caller's url: not a sample."""
    slow = {"url": 0.05, "data": 0.005}

    async def vendor(request: VendorRequest) -> VendorReply:
        await asyncio.sleep(slow["url" if request.caller_url else "data"])
        return json_reply(OK)

    upstream, _ = make_upstream(vendor, vendor_concurrency_min=2, vendor_concurrency_max=100)
    limiter = upstream.limiter("linkface", DETECT)
    for _ in range(10):
        await call(upstream)  # a baseline of 5 ms
    for _ in range(30):  # 10x slower, through the caller's url
        await call(upstream, source=Source("url", text="http://127.0.0.1/liveness"))
    assert limiter.limit == 100
    slow["data"] = 0.05  # the same latency from the vendor itself, 10 at a time: queueing
    for _ in range(3):
        await asyncio.gather(*(call(upstream) for _ in range(10)), return_exceptions=True)
    assert limiter.limit < 100
