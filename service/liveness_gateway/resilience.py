"""Protecting vendors and the gateway: retries with a budget, circuit breakers, shedding.

Small pieces, each tested on its own (tests/test_resilience_units.py):

- :class:`Backoff`: jittered exponential delays ("full jitter").
- :class:`RetryThrottle`: gRFC A6 retry throttling, per vendor. Every failure costs a token,
  every success earns back a fraction; retries stop while fewer than half the tokens are
  left, so a vendor failing broadly gets one request per call, not one per attempt.
- :class:`CircuitBreaker`: per vendor endpoint; opens after consecutive UNAVAILABLE-class
  failures, fails fast while open, lets one probe through when half-open, closes on success.
- :class:`TokenBucket`: aiolimiter's ``AsyncLimiter``, used without waiting (vendor contract
  rates and per-caller rates).
No library fitted the rest without bending it: tenacity and stamina retry but have no shared
budget, purgatory's breaker has no half-open probe limit or state callback to export.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

Clock = Callable[[], float]


@dataclass(frozen=True)
class Backoff:
    """Delay before retry ``n`` (1-based): uniform in [0, min(cap, base * 2**(n-1))]."""

    base_s: float = 0.05
    cap_s: float = 1.0

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** (retry - 1))
        return (rng or _RNG).uniform(0.0, ceiling)


# Jitter, not cryptography: a plain PRNG is right here.
_RNG = random.Random()  # noqa: S311  # nosec B311


class RetryThrottle:
    """gRFC A6 retry throttling: ``max_tokens`` and ``token_ratio`` as in the service config."""

    def __init__(self, max_tokens: float = 10.0, token_ratio: float = 0.1) -> None:
        self._max = max_tokens
        self._ratio = token_ratio
        self._tokens = max_tokens

    @property
    def tokens(self) -> float:
        return self._tokens

    def failure(self) -> None:
        self._tokens = max(0.0, self._tokens - 1.0)

    def success(self) -> None:
        self._tokens = min(self._max, self._tokens + self._ratio)

    def allows_retry(self) -> bool:
        return self._tokens > self._max / 2


class BreakerState(enum.IntEnum):
    """Exported as the value of ``liveness_gateway_circuit_state``."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True)
class Permit:
    """A breaker's leave to send one request; ``probe`` marks the half-open probe."""

    probe: bool


# Permits are values: one of each, instead of a new object per call.
_ORDINARY = Permit(probe=False)
_PROBE = Permit(probe=True)


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open probe."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        open_s: float = 5.0,
        clock: Clock = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self._threshold = failure_threshold
        self._open_s = open_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._open_s:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    def retry_after_s(self) -> float:
        """How long until a probe may go through (0 when one may go now)."""
        if self.state is BreakerState.OPEN:
            return max(0.0, self._open_s - (self._clock() - self._opened_at))
        return 0.0 if not self._probing else self._open_s

    def try_acquire(self) -> Permit | None:
        """May a request go to the vendor now? Half-open lets exactly one probe through.

        The permit says whether this request is the probe: only the probe's own release may
        let the next probe in.
        """
        state = self.state
        if state is BreakerState.CLOSED:
            return _ORDINARY
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return _PROBE
        return None

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._open()

    def release(self, permit: Permit) -> None:
        """The request ended without telling anything about the vendor's health."""
        if permit.probe:
            self._probing = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probing = False
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)


class TokenBucket:
    """aiolimiter's bucket, used without waiting: a token now, or a refusal now."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._limiter = AsyncLimiter(burst, burst / rate_per_s)

    async def try_take(self) -> bool:
        if not self._limiter.has_capacity():
            return False
        await self._limiter.acquire()  # has capacity: returns without suspending
        return True
