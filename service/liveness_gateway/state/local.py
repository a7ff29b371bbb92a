"""The in-process store: each process keeps its own limits and records (one replica).

Also the fallback of the Redis store while Redis cannot answer. The buckets are aiolimiter's
(as before fleet mode), used without waiting; nothing here awaits anything that suspends.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from aiolimiter import AsyncLimiter

SECONDS_PER_DAY = 86_400
MAX_RECORD_BYTES = 64 * 1024 * 1024
"""What the records of one process may hold; the oldest go first beyond it."""
MAX_RECORDS = 100_000


class LocalRate:
    """aiolimiter's bucket: a token now, or a refusal now with one token's time as advice."""

    __slots__ = ("_limiter", "_refusal", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._limiter = AsyncLimiter(burst, burst / rate_per_s)
        self._refusal = 1.0 / rate_per_s

    async def take(self) -> float:
        limiter = self._limiter
        if not limiter.has_capacity():
            return self._refusal
        await limiter.acquire()  # has capacity: returns without suspending
        return 0.0


class LocalQuota:
    """A counter per UTC day."""

    __slots__ = ("_clock", "_day", "_used", "limit")

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._day = -1
        self._used = 0

    async def take(self) -> float:
        return self.take_now()

    def take_now(self) -> float:
        now = self._clock()
        day = int(now // SECONDS_PER_DAY)
        if day != self._day:
            self._day, self._used = day, 0
        if self._used >= self.limit:
            return (day + 1) * SECONDS_PER_DAY - now
        self._used += 1
        return 0.0


class LocalRecords:
    """Records in a dict with expiry times, bounded in bytes and count (oldest out first);
    waiters are woken by an event per key instead of polling."""

    def __init__(
        self,
        *,
        max_bytes: int = MAX_RECORD_BYTES,
        max_records: int = MAX_RECORDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_records = max_records
        self._clock = clock
        self._events: dict[str, asyncio.Event] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        value, expires = item
        if expires <= self._clock():
            self._drop(key)
            return None
        return value

    def _drop(self, key: str) -> None:
        value, _ = self._items.pop(key)
        self._bytes -= len(value)

    def _store(self, key: str, value: bytes, ttl_s: float) -> None:
        if key in self._items:
            self._drop(key)
        self._items[key] = (value, self._clock() + ttl_s)
        self._bytes += len(value)
        while self._items and (
            self._bytes > self._max_bytes or len(self._items) > self._max_records
        ):
            oldest = next(iter(self._items))
            self._drop(oldest)
        self._wake(key)

    def _wake(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    async def claim(self, key: str, pending: bytes, lease_s: float) -> bytes | None:
        held = self._live(key)
        if held is not None:
            return held
        self._store(key, pending, lease_s)
        return None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        self._store(key, value, ttl_s)

    async def release(self, key: str, pending: bytes) -> None:
        if self._live(key) == pending:
            self._drop(key)
            self._wake(key)

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def changed(self, key: str, timeout_s: float) -> None:
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await event.wait()
        except TimeoutError:
            pass

    def __len__(self) -> int:
        return len(self._items)


class LocalStore:
    """Every limit and record in this process: the default, one replica's behaviour."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._records = LocalRecords()

    @property
    def records(self) -> LocalRecords:
        return self._records

    def rate(self, kind: str, name: str, rate_per_s: float, burst: int) -> LocalRate:
        return LocalRate(rate_per_s, burst)

    def quota(self, kind: str, name: str, limit: int) -> LocalQuota:
        return LocalQuota(limit, self._clock)

    async def close(self) -> None:
        return None


__all__ = ["LocalQuota", "LocalRate", "LocalRecords", "LocalStore"]
