"""The Redis store: limits and records shared by every gateway process that names it.

Exact without locks: each limit is one Lua script that reads the server's clock (``TIME``),
decides and writes in one atomic step, so no two processes can both take the last token.

- Rates: GCRA (the token bucket as one timestamp, the "theoretical arrival time"); a refusal
  returns the seconds until a token is there, which becomes the caller's RetryInfo.
- Daily quotas: a counter per caller and UTC day (the server's day, the same for the fleet).
- Records: ``SET NX GET`` claims a key, ``SET PX`` stores a result, a script releases a claim
  only while it is still the owner's.

Redis slow or down: every call is bounded by ``--state-timeout``; a failure or a timeout
switches this process to its fallback (metric ``liveness_gateway_state_fallback_active``),
and one probe call at a time goes back to Redis after a jittered exponential backoff (0.2 s to
2 s), so a dead Redis is not hammered. The first probe that succeeds ends the fallback; redis-py
reconnects by itself and loads the scripts again (``EVALSHA``, then ``SCRIPT LOAD`` on
``NOSCRIPT``) after a restart. While in fallback:

- rates (``--state-rate-fallback``): ``local`` buckets of ``rate / --state-expected-processes``
  (burst likewise, at least 1), or ``closed``: STATE_UNAVAILABLE;
- quotas (``--state-quota-fallback``): ``local``, open up to ``ceil(quota / expected
  processes)`` calls per process and UTC day, or ``closed``: STATE_UNAVAILABLE;
- records: this process' own (idempotency and dedupe hold per process, not fleet-wide).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from liveness_gateway import errors
from liveness_gateway.config import StateConfig
from liveness_gateway.metrics import Metrics
from liveness_gateway.state.local import LocalQuota, LocalRate, LocalRecords

log = logging.getLogger(__name__)

T = TypeVar("T")

KEY_PREFIX = "liveness-gateway:"
MAX_CONNECTIONS = 64
"""Connections to Redis per process; a call waits for a free one within its timeout."""
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 2.0
POLL_S = 0.025
"""How often a waiter looks at a request_id another process is working on."""

# GCRA: the bucket is the time at which it would be full again ("tat"); each token moves it
# one interval on; a token is refused while tat - burst * interval lies in the future.
RATE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = 1 / tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return string.format('%.6f', allow_at - now)
end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat),
           'PX', math.ceil((new_tat - now) * 1000) + 1000)
return '0'
"""

# A counter per caller for the server's UTC day: {1, seconds left} when counted, {0, ...} not.
QUOTA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local day = math.floor(now / 86400)
local left = string.format('%.3f', (day + 1) * 86400 - now)
local stored = redis.call('HMGET', KEYS[1], 'day', 'used')
local used = 0
if tonumber(stored[1]) == day then used = tonumber(stored[2]) end
if used >= tonumber(ARGV[1]) then return {0, left} end
redis.call('HSET', KEYS[1], 'day', day, 'used', used + 1)
redis.call('EXPIREAT', KEYS[1], (day + 2) * 86400)
return {1, left}
"""

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class StoreDownError(Exception):
    """Redis did not answer in time, or this process is backing off from it."""


_RNG = random.Random()  # noqa: S311  # nosec B311  (jitter, not cryptography)


class _Link:
    """Is Redis usable now? Down after a failure; one probe at a time after a backoff."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self.down = False
        self._failures = 0
        self._retry_at = 0.0
        self._probing = False

    def admit(self) -> bool | None:
        """None: do not call Redis now; else whether this call is the probe."""
        if not self.down:
            return False
        if self._probing or self._clock() < self._retry_at:
            return None
        self._probing = True
        return True

    def retry_in(self) -> float:
        return max(BACKOFF_BASE_S, self._retry_at - self._clock())

    def succeeded(self) -> None:
        if self.down:
            log.info("state store reachable again: limits are fleet-wide again")
            self._metrics.state_fallback.set(0)
        self.down, self._failures, self._probing = False, 0, False

    def abandoned(self) -> None:
        self._probing = False

    def failed(self, probe: bool, why: str) -> None:
        if self.down and not probe:
            return  # a call that started before the outage was noticed: nothing new
        self._failures += 1
        self._probing = False
        delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (self._failures - 1))
        self._retry_at = self._clock() + delay * _RNG.uniform(0.5, 1.0)
        if not self.down:
            log.warning("state store unreachable (%s): fallback policy applies", why)
            self._metrics.state_fallback.set(1)
            self.down = True


class RedisStore:
    """Limits and records in Redis, with the fallback above."""

    def __init__(self, config: StateConfig, metrics: Metrics) -> None:
        if config.url is None:
            raise ValueError("RedisStore needs a state URL")
        self._config = config
        self._metrics = metrics
        self._timeout_s = config.timeout_s
        pool = aioredis.BlockingConnectionPool.from_url(
            config.url,
            password=config.password,
            max_connections=MAX_CONNECTIONS,
            timeout=config.timeout_s,
            socket_timeout=config.timeout_s,
            socket_connect_timeout=config.timeout_s,
            retry=Retry(NoBackoff(), 0),  # the fallback is the retry: never wait twice
        )
        self._client = aioredis.Redis(connection_pool=pool)
        self._rate_script = self._client.register_script(RATE_SCRIPT)
        self._quota_script = self._client.register_script(QUOTA_SCRIPT)
        self._release_script = self._client.register_script(RELEASE_SCRIPT)
        self.link = _Link(metrics)
        self._records = RedisRecords(self, LocalRecords())

    @property
    def records(self) -> RedisRecords:
        return self._records

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    def rate(self, kind: str, name: str, rate_per_s: float, burst: int) -> RedisRate:
        return RedisRate(self, kind, name, rate_per_s, burst)

    def quota(self, kind: str, name: str, limit: int) -> RedisQuota:
        return RedisQuota(self, kind, name, limit)

    async def close(self) -> None:
        await self._client.aclose()

    async def run(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` on Redis within the timeout; StoreDownError when it cannot be made or fails."""
        probe = self.link.admit()
        if probe is None:
            raise StoreDownError
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await call()
        except (RedisError, OSError, TimeoutError) as exc:
            self._metrics.state_call(operation, time.perf_counter() - started, failed=True)
            self.link.failed(probe, type(exc).__name__)
            raise StoreDownError from None
        except BaseException:
            if probe:  # cancelled: the probe said nothing; let the next call probe
                self.link.abandoned()
            raise
        self._metrics.state_call(operation, time.perf_counter() - started, failed=False)
        self.link.succeeded()
        return result

    def refuse(self, kind: str) -> errors.GatewayError:
        self._metrics.state_fallback_call(kind, "closed")
        return errors.state_unavailable(_LIMIT_NAMES.get(kind, kind), self.link.retry_in())

    def share(self, amount: float) -> float:
        return amount / self._config.expected_processes

    @property
    def config(self) -> StateConfig:
        return self._config

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    def release_script(self, key: str, pending: bytes) -> Awaitable[Any]:
        return self._release_script(keys=[key], args=[pending])


_LIMIT_NAMES = {
    "caller_rate": "caller's rate limit",
    "caller_quota": "caller's daily quota",
    "vendor_rate": "vendor's rate limit",
}


class RedisRate:
    """A fleet-wide bucket; its local share while Redis is unreachable."""

    __slots__ = ("_key", "_kind", "_local", "_store", "burst", "rate_per_s")

    def __init__(
        self, store: RedisStore, kind: str, name: str, rate_per_s: float, burst: int
    ) -> None:
        self._store = store
        self._kind = kind
        self._key = f"{KEY_PREFIX}{kind}:{name}"
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._local = LocalRate(store.share(rate_per_s), max(1, math.floor(store.share(burst))))

    async def take(self) -> float:
        store = self._store
        try:
            wait = await store.run(
                "rate",
                lambda: store._rate_script(keys=[self._key], args=[self.rate_per_s, self.burst]),
            )
        except StoreDownError:
            if store.config.rate_fallback == "closed":
                raise store.refuse(self._kind) from None
            store.metrics.state_fallback_call(self._kind, "local")
            return await self._local.take()
        return float(wait)


class RedisQuota:
    """A fleet-wide daily counter; open up to a local share while Redis is unreachable."""

    __slots__ = ("_key", "_kind", "_local", "_store", "limit")

    def __init__(self, store: RedisStore, kind: str, name: str, limit: int) -> None:
        self._store = store
        self._kind = kind
        self._key = f"{KEY_PREFIX}{kind}:{name}"
        self.limit = limit
        self._local = LocalQuota(max(1, math.ceil(store.share(limit))))

    async def take(self) -> float:
        store = self._store
        try:
            counted, left = await store.run(
                "quota", lambda: store._quota_script(keys=[self._key], args=[self.limit])
            )
        except StoreDownError:
            if store.config.quota_fallback == "closed":
                raise store.refuse(self._kind) from None
            store.metrics.state_fallback_call(self._kind, "local")
            return self._local.take_now()
        return 0.0 if int(counted) else max(float(left), 0.001)


class RedisRecords:
    """Records in Redis (binary values under the key prefix); this process' own while Redis
    is unreachable."""

    def __init__(self, store: RedisStore, local: LocalRecords) -> None:
        self._store = store
        self._local = local

    def _fallback(self) -> LocalRecords:
        self._store.metrics.state_fallback_call("records", "local")
        return self._local

    async def claim(self, key: str, pending: bytes, lease_s: float) -> bytes | None:
        client = self._store.client
        try:
            held: Any = await self._store.run(
                "records",
                lambda: client.set(KEY_PREFIX + key, pending, nx=True, get=True, px=_ms(lease_s)),
            )
        except StoreDownError:
            return await self._fallback().claim(key, pending, lease_s)
        return bytes(held) if held is not None else None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        client = self._store.client
        try:
            await self._store.run(
                "records", lambda: client.set(KEY_PREFIX + key, value, px=_ms(ttl_s))
            )
        except StoreDownError:
            await self._fallback().put(key, value, ttl_s)

    async def release(self, key: str, pending: bytes) -> None:
        try:
            await self._store.run(
                "records", lambda: self._store.release_script(KEY_PREFIX + key, pending)
            )
        except StoreDownError:
            await self._fallback().release(key, pending)

    async def get(self, key: str) -> bytes | None:
        client = self._store.client
        try:
            value: Any = await self._store.run("records", lambda: client.get(KEY_PREFIX + key))
        except StoreDownError:
            return await self._fallback().get(key)
        return bytes(value) if value is not None else None

    async def changed(self, key: str, timeout_s: float) -> None:
        # Polled: the owner may be another process.
        await asyncio.sleep(max(0.0, min(timeout_s, POLL_S)))


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


__all__ = ["RedisQuota", "RedisRate", "RedisRecords", "RedisStore", "StoreDownError"]
