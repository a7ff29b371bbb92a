"""Where the gateway's shared state lives: rate limits, daily quotas, idempotency records.

Two stores behind one interface:

- :class:`~liveness_gateway.state.local.LocalStore` (the default): this process' memory,
  exactly what one replica did before fleet mode, at the same cost per call;
- :class:`~liveness_gateway.state.shared.RedisStore` (``--state-url``): Redis, shared by every
  gateway process that names it, so limits are fleet-wide and exact (atomic Lua scripts on the
  server's clock) and a request_id is honoured whichever replica the resend reaches. While
  Redis is slow or down each call is bounded by ``--state-timeout`` and the fallback policy
  of each limit applies (README, "Fleet mode").

A limit answers ``take()`` with ``0.0`` (admitted: one token or one call taken) or the seconds
until it would admit again (the RetryInfo the caller gets); a limit whose policy is to fail
closed raises STATE_UNAVAILABLE instead.
"""

from __future__ import annotations

from typing import Protocol

from liveness_gateway.config import StateConfig
from liveness_gateway.metrics import Metrics

CALLER_RATE = "caller_rate"
CALLER_QUOTA = "caller_quota"
VENDOR_RATE = "vendor_rate"


class RateLimit(Protocol):
    """A token bucket: ``rate_per_s`` tokens a second, at most ``burst`` saved up."""

    rate_per_s: float
    burst: int

    async def take(self) -> float:
        """0.0 when a token was taken; else the seconds until one is there."""
        ...


class DailyQuota(Protocol):
    """At most ``limit`` calls per UTC day."""

    limit: int

    async def take(self) -> float:
        """0.0 when the call was counted; else the seconds until the quota resets."""
        ...


class Records(Protocol):
    """Short-lived byte records with an expiry: idempotency keys and Upload dedupe entries."""

    async def claim(self, key: str, pending: bytes, lease_s: float) -> bytes | None:
        """Store ``pending`` for ``lease_s`` unless ``key`` holds something; None when it was
        stored (the caller owns the key), else what the key holds."""
        ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` whatever the key held."""
        ...

    async def release(self, key: str, pending: bytes) -> None:
        """Delete ``key`` if it still holds ``pending`` (the owner gives up its claim)."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def changed(self, key: str, timeout_s: float) -> None:
        """Return when ``key`` may have changed, or after ``timeout_s`` at most."""
        ...


class StateStore(Protocol):
    """The limits and records of one gateway process (shared or not)."""

    @property
    def records(self) -> Records: ...

    def rate(self, kind: str, name: str, rate_per_s: float, burst: int) -> RateLimit:
        """The bucket ``name`` (``checkout``, ``linkface``) of ``kind`` (CALLER_RATE, ...)."""
        ...

    def quota(self, kind: str, name: str, limit: int) -> DailyQuota: ...

    async def close(self) -> None: ...


def open_store(config: StateConfig, metrics: Metrics) -> StateStore:
    """The store ``config`` names: Redis when a URL is set, else this process."""
    if config.url is None:
        from liveness_gateway.state.local import LocalStore

        return LocalStore()
    from liveness_gateway.state.shared import RedisStore

    return RedisStore(config, metrics)


__all__ = [
    "CALLER_QUOTA",
    "CALLER_RATE",
    "VENDOR_RATE",
    "DailyQuota",
    "RateLimit",
    "Records",
    "StateStore",
    "open_store",
]
