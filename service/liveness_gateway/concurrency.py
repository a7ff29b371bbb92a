"""How many requests one vendor endpoint may have in flight: a fixed cap, or a limit that
follows the vendor's latency.

:class:`GradientLimiter` is Netflix concurrency-limits' ``Gradient2Limit``
(``concurrency-limits-core/.../limit/Gradient2Limit.java``) with its earlier
``rttTolerance``, and the multiplicative decrease on a drop of its ``AIMDLimit``, adapted
where the gateway's vendors differ from Netflix's services:

- **Baseline: the unloaded latency, not a long average.** Gradient2 compares each sample to
  an exponential average of all samples (600 of them), which follows a vendor that stays
  overloaded: under sustained queueing the limit drifts up again. Here the baseline is the
  lowest latency seen (as Netflix's first ``GradientLimit`` and Envoy's adaptive concurrency
  filter use a minimum RTT), lowered by any faster answer, and re-measured only from answers
  to requests that met at most ``min_limit`` in flight (when sent and when answered): Envoy
  re-measures its minimum RTT by pinning concurrency to its minimum for a while; this
  limiter does not shed to do so, it takes the measurement when the limit has come down to
  the minimum by itself (a vendor that became slower for good drives the limit there, and
  the baseline follows).
- **A baseline per request size.** Netflix warns that a minimum biases the baseline low
  where request sizes vary widely, shedding needlessly; the gateway's payloads range from
  1 KB to 5 MB, so each sample is compared with the baseline of its own size class (the
  body's size in powers of 4 from 64 KiB: < 64 KiB, < 256 KiB, < 1 MiB, < 4 MiB, more).
- **Updates per window of 10 answers** (the sample count of Netflix's ``WindowedLimit``):
  the window's mean of sample / baseline is its latency ratio, and the most requests any
  of them met in flight (when sent or when answered) its load.
- **Slack**: latency is compared with the baseline or ``slack_s``, whichever is larger. A
  gateway whose own CPU is saturated delays every answer by its event loop's queue (at 16
  calls in flight on one core, 10-30 ms over a 1 ms vendor): a pure ratio read that as a
  vendor queueing 10x and shed a quarter of the calls to a fast vendor. With a 20 ms slack a
  1 ms vendor counts as queueing only past 30 ms (1.5 x 20 ms); a vendor whose unloaded
  latency is above the slack (200 ms, 1 s) is judged exactly as without it.
- **gradient** = clamp(tolerance / ratio, 0.5, 1): latency up to ``tolerance`` times the
  baseline is no queueing. Then, as in Gradient2, the new estimate is limit + sqrt(limit)
  (the queue allowance of Netflix's ``SquareRootFunction``), taken 0.2 of the way
  (smoothing), except while fewer than half the permits are in use (Gradient2's "app
  limited" rule). Above the tolerance the limit becomes gradient x load: from the load that
  met the queueing when that is below the limit (Gradient2 shrinks from the limit, which
  here may be the unused maximum), without the queue allowance and without smoothing (it
  happens at most once per round trip, below), so that the latency settles near the
  tolerance, not above it. Always within [min_limit, max_limit].
- **Drops**: a vendor timeout, a rate-limit refusal (429 / RATE_LIMIT_EXCEEDED) or an HTTP
  503 multiplies the limit by 0.9 (``AIMDLimit``'s backoff ratio).
- **At most one decrease per round trip** (the lowest baseline latency), drop or gradient,
  as TCP's congestion control decreases at most once per round trip while it increases per
  acknowledgement: a decrease shows only in answers to requests sent after it, a burst of
  timeouts is one episode, and a gateway short of CPU (whose own delays are in every
  sample) cannot collapse the limit in a fraction of a second. Increases are per window.
- **Only answers are samples**: a call that ended on the caller's deadline, was cancelled,
  never reached the vendor, or whose source was the caller's url (the vendor's latency then
  includes that url's download) says nothing of the vendor's latency.
- **It starts at the maximum.** A limiter knows nothing of a vendor before its first answer;
  starting low sheds callers a vendor could serve for several vendor round trips (with a
  1 s vendor, seconds), which is what the fixed cap did. The first answers come back after
  one unloaded latency and set the baseline; from then on queueing shrinks the limit.

Single-threaded (one event loop): no locks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

Clock = Callable[[], float]

ADAPTIVE = "adaptive"
FIXED = "fixed"
MODES = (ADAPTIVE, FIXED)

_SMOOTHING = 0.2
"""Gradient2's default smoothing: the share of the queue allowance added per window."""
_MIN_GRADIENT = 0.5
"""Gradient2's floor: one decrease never cuts the estimate by more than half."""
_WINDOW = 10
"""Samples averaged per update (the sample count of Netflix's ``WindowedLimit``): one slow
answer is not queueing."""
_BACKOFF_RATIO = 0.9
"""AIMDLimit's default multiplicative decrease on a drop."""


_SIZE_CLASS_BASE = 64 * 1024


def size_class(nbytes: int) -> int:
    """0 below 64 KiB, then one more per factor of 4, up to 4 (4 MiB and more)."""
    if nbytes < _SIZE_CLASS_BASE:
        return 0
    return min(4, 1 + ((nbytes // _SIZE_CLASS_BASE).bit_length() - 1) // 2)


class Limiter(Protocol):
    """Permits for requests to one vendor endpoint; never queues."""

    @property
    def limit(self) -> int: ...

    @property
    def in_flight(self) -> int: ...

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def sample(self, seconds: float, in_flight_at_start: int, size_class: int = 0) -> None:
        """The vendor answered after ``seconds``; ``in_flight_at_start`` requests (this one
        included) were in flight when it was sent; ``size_class``: :func:`size_class`."""

    def drop(self) -> None:
        """The vendor signalled overload (timeout, rate limit, 503)."""


class FixedLimiter:
    """The fixed cap: ``limit`` requests in flight, more refused at once (never queued).
    Also the gateway's own cap on RPCs in flight (``--max-in-flight``)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_flight = 0

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def try_acquire(self) -> bool:
        if self._in_flight >= self._limit:
            return False
        self._in_flight += 1
        return True

    def release(self) -> None:
        self._in_flight -= 1

    def sample(self, seconds: float, in_flight_at_start: int, size_class: int = 0) -> None:
        return None

    def drop(self) -> None:
        return None


class GradientLimiter:
    """A concurrency limit that follows the vendor's latency (module docstring)."""

    def __init__(
        self,
        *,
        min_limit: int,
        max_limit: int,
        tolerance: float = 1.5,
        slack_s: float = 0.0,
        initial: int | None = None,
        clock: Clock = time.monotonic,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError("need 1 <= min_limit <= max_limit")
        if tolerance < 1:
            raise ValueError("tolerance must be at least 1")
        if not slack_s >= 0:
            raise ValueError("slack_s must not be negative")
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.tolerance = tolerance
        self.slack_s = slack_s
        start = max_limit if initial is None else initial
        self._estimate = float(min(max_limit, max(min_limit, start)))
        self._in_flight = 0
        self._baselines_s: dict[int, float] = {}
        self._ratios = 0.0
        self._samples = 0
        self._window_load = 0
        self._last_decrease = -math.inf
        self._clock = clock
        self._on_change = on_change
        self._published = int(self._estimate)
        if on_change is not None:
            on_change(self._published)

    @property
    def limit(self) -> int:
        return int(self._estimate)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def baseline_s(self, size_class: int = 0) -> float | None:
        """The unloaded latency samples of a size class are compared with (None before the
        first)."""
        return self._baselines_s.get(size_class)

    def try_acquire(self) -> bool:
        if self._in_flight >= int(self._estimate):
            return False
        self._in_flight += 1
        return True

    def release(self) -> None:
        self._in_flight -= 1

    def sample(self, seconds: float, in_flight_at_start: int, size_class: int = 0) -> None:
        if not seconds > 0:  # refuses NaN too
            return
        # the load this request met: what it found, or what came after it
        met = max(in_flight_at_start, self._in_flight)
        baseline = self._baselines_s.get(size_class)
        if baseline is None or seconds < baseline or met <= self.min_limit:
            # no load of ours: what the vendor takes now (see the module docstring)
            self._baselines_s[size_class] = baseline = seconds
        floor = max(baseline, self.slack_s)
        self._ratios += max(floor, seconds) / floor
        self._samples += 1
        self._window_load = max(self._window_load, met)
        if self._samples < _WINDOW:
            return
        ratio, load = self._ratios / self._samples, self._window_load
        self._ratios, self._samples, self._window_load = 0.0, 0, 0
        gradient = max(_MIN_GRADIENT, min(1.0, self.tolerance / ratio))
        estimate = self._estimate
        if gradient < 1.0 and not self._may_decrease():
            return  # decreased less than a round trip ago: its effect is not measured yet
        if gradient < 1.0:
            # Queueing, caused by the load these requests met, not by the unused part of the
            # limit (it starts at the maximum): shrink from that load, with no allowance and
            # no smoothing (it happens once per round trip at most).
            self._set(gradient * min(estimate, float(load)))
        elif load >= estimate / 2:  # else app limited: nothing learnt about a higher limit
            self._set(estimate + _SMOOTHING * math.sqrt(estimate))

    def drop(self) -> None:
        if self._may_decrease():
            self._set(self._estimate * _BACKOFF_RATIO)

    def _may_decrease(self) -> bool:
        """At most one decrease per round trip (the lowest baseline), as TCP's congestion
        control: what the last one did shows only in answers to requests sent after it, and
        a gateway short of CPU, whose own delays count in every sample, must not collapse
        the limit within a second."""
        now = self._clock()
        if now - self._last_decrease < min(self._baselines_s.values(), default=0.0):
            return False
        self._last_decrease = now
        return True

    def _set(self, estimate: float) -> None:
        self._estimate = min(float(self.max_limit), max(float(self.min_limit), estimate))
        if self._on_change is not None and int(self._estimate) != self._published:
            self._published = int(self._estimate)
            self._on_change(self._published)
