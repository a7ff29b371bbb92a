"""One vendor exchange, protected: breaker, limits, deadline, retries, accounting.

The servicer says *what* to send and how to read the reply; this module decides *whether*
and *how often* to send it. Every retry loop, limit and breaker of the gateway is here.
"""

from __future__ import annotations

import asyncio
import time
from typing import TypeVar

import grpc
from opentelemetry.trace import Span, Tracer

from liveness_gateway import errors, tracing
from liveness_gateway.audit.trail import note_attempt
from liveness_gateway.concurrency import (
    FIXED,
    FixedLimiter,
    GradientLimiter,
    Limiter,
    size_class,
)
from liveness_gateway.config import VENDOR_DOWNLOAD_LIMIT_S, GatewayConfig
from liveness_gateway.errors import VENDOR_STATUS_TABLE, GatewayError
from liveness_gateway.logs import note_vendor
from liveness_gateway.metrics import Metrics
from liveness_gateway.resilience import (
    Backoff,
    BreakerState,
    CircuitBreaker,
    RetryThrottle,
)
from liveness_gateway.scrub import Scrubber
from liveness_gateway.state import VENDOR_RATE, RateLimit, StateStore
from liveness_gateway.state.local import LocalStore
from liveness_gateway.transport import Transport
from liveness_gateway.vendors import ENDPOINTS
from liveness_gateway.vendors.base import Endpoint, ParseContext, VendorRequest

Result = TypeVar("Result")

_MIN_ATTEMPT_S = 0.05
"""A retry is not worth starting with less time than this left."""

_HEALTH_NAMES = {False: "failing", True: "up", None: "unknown"}
ATTEMPT_NEXT = "liveness_gateway.next_attempt"

# The caller's own deadline, or the caller's slow download url: nothing about the vendor.
_NOT_VENDOR_HEALTH = frozenset(
    {errors.DEADLINE_EXCEEDED}
    | {status for status, rule in VENDOR_STATUS_TABLE.items() if rule.callers_fault}
)


def vendor_health(err: GatewayError, *, caller_url: bool = False) -> bool | None:
    """What a failure says of the vendor's health (breaker, retry budget): False for a
    failing vendor, True for one that answered, None where it says nothing.

    A call whose source is the caller's url can time out because that url is slow: such a
    timeout says nothing of the vendor, or one caller could open the breaker for everyone.
    """
    if err.vendor_fault:
        return False
    if err.reason in _NOT_VENDOR_HEALTH or (caller_url and err.reason == errors.VENDOR_TIMEOUT):
        return None
    return bool(err.code != grpc.StatusCode.UNAVAILABLE)


def overload_signal(err: GatewayError, *, caller_url: bool = False) -> bool:
    """Did the vendor say it is overloaded: its own timeout (not the caller's deadline, nor
    a slow caller url), a rate-limit refusal, or HTTP 503? The adaptive limit backs off."""
    if err.reason == errors.VENDOR_TIMEOUT:
        return not caller_url
    return err.reason == errors.RATE_LIMIT_EXCEEDED or err.http_status in (429, 503)


def _body_bytes(request: VendorRequest) -> int:
    return sum(len(p.value) for p in request.parts if not isinstance(p.value, str))


def _learn(
    limiter: Limiter,
    request: VendorRequest,
    seconds: float,
    load: int,
    failure: GatewayError | None,
) -> None:
    """What one exchange tells the concurrency limit: an overload signal, or the latency of
    an answer. Nothing from the caller's deadline, or from a call through the caller's url
    (its latency includes that download)."""
    if failure is not None and overload_signal(failure, caller_url=request.caller_url):
        limiter.drop()
    elif not request.caller_url and (failure is None or failure.http_status is not None):
        limiter.sample(seconds, load, size_class(_body_bytes(request)))


def retryable(err: GatewayError, *, idempotent: bool) -> bool:
    """Safe and useful to send again? Never for 4xx; non-idempotent only if never sent."""
    if err.never_sent:
        return True
    if not idempotent or err.code != grpc.StatusCode.UNAVAILABLE:
        return False
    if err.reason == errors.VENDOR_TIMEOUT:
        return False  # a slow vendor gets slower with more load; the caller decides
    return err.http_status is None or err.http_status >= 500


class Upstream:
    """Per-process state for calling vendors: breakers, throttles, limiters, shedders."""

    def __init__(
        self,
        config: GatewayConfig,
        transport: Transport,
        metrics: Metrics,
        *,
        tracer: Tracer | None = None,
        store: StateStore | None = None,
    ) -> None:
        """``tracer``: a client span per attempt (None: tracing off, no per-call work);
        ``store``: where the vendor rate's bucket lives (None: this process)."""
        self._config = config
        self._tracer = tracer
        self._res = config.resilience
        self._transport = transport
        self._metrics = metrics
        self._scrubber = Scrubber(config.secrets)
        self._backoff = Backoff(self._res.backoff_base_s, self._res.backoff_cap_s)
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._throttles: dict[str, RetryThrottle] = {}
        self._limiters: dict[tuple[str, str], Limiter] = {}
        self._fixed: dict[str, FixedLimiter] = {}
        self._store: StateStore = store if store is not None else LocalStore()
        self._buckets: dict[str, RateLimit] = {}
        for known in ENDPOINTS:  # the limit gauges exist before the first call
            self.limiter(known.vendor, known.name)

    def breaker(self, vendor: str, endpoint: str) -> CircuitBreaker:
        key = (vendor, endpoint)
        breaker = self._breakers.get(key)
        if breaker is None:
            gauge = self._metrics.circuit_state.labels(vendor, endpoint)
            breaker = CircuitBreaker(
                failure_threshold=self._res.breaker_failures,
                open_s=self._res.breaker_open_s,
                on_change=lambda state: gauge.set(int(state)),
            )
            self._breakers[key] = breaker
        return breaker

    def _throttle(self, vendor: str) -> RetryThrottle:
        throttle = self._throttles.get(vendor)
        if throttle is None:
            throttle = RetryThrottle(self._res.retry_max_tokens, self._res.retry_token_ratio)
            self._throttles[vendor] = throttle
        return throttle

    def limiter(self, vendor: str, endpoint: str) -> Limiter:
        """The concurrency limit of one vendor endpoint (concurrency.py). The fixed cap is
        per vendor, shared by its endpoints, as it always was."""
        key = (vendor, endpoint)
        limiter = self._limiters.get(key)
        if limiter is None:
            gauge = self._metrics.concurrency_limit.labels(vendor, endpoint)
            if self._res.vendor_concurrency == FIXED:
                limiter = self._fixed.get(vendor)
                if limiter is None:
                    limiter = self._fixed[vendor] = FixedLimiter(self._res.vendor_max_concurrency)
                gauge.set(limiter.limit)
            else:
                limiter = GradientLimiter(
                    min_limit=self._res.vendor_concurrency_min,
                    max_limit=self._res.vendor_concurrency_max,
                    tolerance=self._res.vendor_latency_tolerance,
                    slack_s=self._res.vendor_latency_slack_ms / 1000,
                    on_change=gauge.set,
                )
            self._limiters[key] = limiter
        return limiter

    def _bucket(self, vendor: str) -> RateLimit | None:
        rate = self._res.vendor_rate_per_s
        if rate is None:
            return None
        bucket = self._buckets.get(vendor)
        if bucket is None:
            bucket = self._store.rate(VENDOR_RATE, vendor, rate, self._res.vendor_rate_burst)
            self._buckets[vendor] = bucket
        return bucket

    def deadline(self, time_remaining: float | None) -> float | None:
        """The monotonic time by which the vendor must have answered, given the caller's
        time left (None: no deadline). Raises DEADLINE_EXCEEDED when nothing is left."""
        if time_remaining is None:
            return None
        budget = time_remaining - self._config.deadline_margin_s
        if budget <= 0:
            raise errors.deadline_exceeded()
        return time.monotonic() + budget

    async def call(
        self, endpoint: Endpoint[Result], request: VendorRequest, deadline: float | None
    ) -> Result:
        """Send ``request`` to ``endpoint`` under every limit, retrying where safe, before
        ``deadline`` (monotonic; None: the endpoint's own timeout alone)."""
        vendor = endpoint.vendor
        note_vendor(vendor)
        breaker = self.breaker(vendor, endpoint.name)
        permit = breaker.try_acquire()
        if permit is None:
            self._shed("circuit_open", vendor)
            raise errors.circuit_open(vendor, breaker.retry_after_s() or self._res.breaker_open_s)
        limiter = self.limiter(vendor, endpoint.name)
        if not limiter.try_acquire():
            breaker.release(permit)
            self._shed("vendor_concurrency", vendor)
            raise errors.overloaded(
                f"{vendor} concurrency limit", self._res.shed_retry_after_s, vendor
            )
        try:
            bucket = self._bucket(vendor)
            if bucket is not None and (wait := await bucket.take()):
                self._shed("vendor_rate", vendor)
                raise errors.gateway_rate_limited(vendor, wait, f"{bucket.rate_per_s:g}/s")
            return await self._attempts(endpoint, request, breaker, bucket, deadline, limiter)
        except BaseException:
            breaker.release(permit)
            raise
        finally:
            limiter.release()

    def _shed(self, cause: str, vendor: str) -> None:
        self._metrics.shed_call(cause)
        if self._tracer is not None:  # no attempt was made: the event goes on the RPC's span
            tracing.event(tracing.EVENT_SHED, {"cause": cause, "vendor": vendor})

    async def _attempts(
        self,
        endpoint: Endpoint[Result],
        request: VendorRequest,
        breaker: CircuitBreaker,
        bucket: RateLimit | None,
        deadline: float | None,
        limiter: Limiter,
    ) -> Result:
        vendor = endpoint.vendor
        throttle = self._throttle(vendor)
        attempt = 0
        while True:
            attempt += 1
            span: Span | None = None
            sent = request
            if self._tracer is not None:
                span, sent = tracing.start_attempt(self._tracer, request, attempt)
            try:
                result = await self._once(endpoint, sent, deadline, span, limiter)
            except GatewayError as err:
                note_vendor(vendor, err.vendor_request_id or "")
                healthy = vendor_health(err, caller_url=request.caller_url)
                if healthy is False:
                    breaker.failure()
                    throttle.failure()
                elif healthy:
                    breaker.success()  # the vendor answered: it is up
                    throttle.success()
                delay = self._backoff.delay(attempt)
                refusal = self._no_retry(attempt, err, endpoint, throttle, breaker, deadline, delay)
                # a retry is a request too: it spends the vendor contract's rate
                if refusal is None and bucket is not None and await bucket.take():
                    refusal = "vendor_rate"
                if span is not None:
                    tracing.attempt_failed(span, err)
                    span.add_event(
                        tracing.EVENT_BREAKER,
                        {
                            "liveness_gateway.vendor_health": _HEALTH_NAMES[healthy],
                            "liveness_gateway.breaker_state": breaker.state.name.lower(),
                        },
                    )
                    if refusal is None:
                        span.add_event(
                            tracing.EVENT_RETRY,
                            {"liveness_gateway.retry_delay_s": delay, ATTEMPT_NEXT: attempt + 1},
                        )
                    else:
                        span.add_event(tracing.EVENT_GIVE_UP, {"liveness_gateway.why": refusal})
                    span.end()
                if refusal is not None:
                    raise
                self._metrics.retried(vendor, endpoint.name)
                await asyncio.sleep(delay)
                continue
            except BaseException as exc:
                if span is not None:
                    tracing.attempt_aborted(span, exc)
                    span.end()
                raise
            breaker.success()
            throttle.success()
            request_id = getattr(result, "request_id", "")
            note_vendor(vendor, request_id)
            if span is not None:
                if request_id:
                    span.set_attribute("liveness_gateway.vendor_request_id", request_id)
                span.end()
            return result

    def _no_retry(
        self,
        attempt: int,
        err: GatewayError,
        endpoint: Endpoint[Result],
        throttle: RetryThrottle,
        breaker: CircuitBreaker,
        deadline: float | None,
        delay: float,
    ) -> str | None:
        """Why the failed attempt is not retried, or None (rate aside: the caller takes a
        token last, only when all else allows the retry)."""
        if attempt >= self._res.max_attempts:
            return "max_attempts"
        if not retryable(err, idempotent=endpoint.idempotent):
            return "not_retryable"
        if not throttle.allows_retry():
            return "retry_budget"
        if breaker.state is not BreakerState.CLOSED:
            return "breaker_open"
        if deadline is not None and deadline - time.monotonic() <= delay + _MIN_ATTEMPT_S:
            return "deadline"
        return None

    def timeout_for(self, endpoint: Endpoint[Result], request: VendorRequest) -> float:
        """The endpoint's timeout; with the caller's url, plus the vendor's download limit
        (the vendor downloads first, then works as usual)."""
        timeout_s = self._config.vendor(endpoint.vendor).timeout_for(endpoint.name)
        return timeout_s + VENDOR_DOWNLOAD_LIMIT_S if request.caller_url else timeout_s

    async def _once(
        self,
        endpoint: Endpoint[Result],
        request: VendorRequest,
        deadline: float | None,
        span: Span | None = None,
        limiter: Limiter | None = None,
    ) -> Result:
        timeout_s, caller_bound = self.timeout_for(endpoint, request), False
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise errors.deadline_exceeded(endpoint.vendor)
            if left < timeout_s:
                timeout_s, caller_bound = left, True
        in_flight = self._metrics.in_flight(endpoint.vendor, endpoint.name)
        failure: GatewayError | None = None
        outcome: str | None = None  # set when the exchange ended without a GatewayError
        load = limiter.in_flight if limiter is not None else 0
        started = time.perf_counter()
        in_flight.inc()
        try:
            reply = await self._transport.send(
                request, timeout_s=timeout_s, caller_bound=caller_bound
            )
            if span is not None:
                tracing.reply_status(span, reply.http_status)
            return endpoint.parse(reply, ParseContext(endpoint, self._scrubber, request.options))
        except GatewayError as err:
            failure = err
            raise
        except BaseException as exc:
            outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
            raise
        finally:
            in_flight.dec()
            seconds = time.perf_counter() - started
            note_attempt(endpoint.name, seconds)  # the audit record's attempts and latency
            if limiter is not None and outcome is None:
                _learn(limiter, request, seconds, load, failure)
            self._metrics.vendor_call(
                endpoint.vendor,
                endpoint.name,
                seconds,
                failure,
                outcome,
                tracing.exemplar(span) if span is not None else None,
            )
