"""The state store alone: the in-process store, the Redis scripts on a real Redis, the fallback.

Tests that use ``redis_server`` start Debian's redis-server (system tests); the fallback tests
with no Redis at all point the store at a socket nobody listens on.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from liveness_gateway import errors
from liveness_gateway.config import ConfigError, StateConfig
from liveness_gateway.errors import GatewayError
from liveness_gateway.metrics import Metrics
from liveness_gateway.state import CALLER_QUOTA, CALLER_RATE, VENDOR_RATE, open_store
from liveness_gateway.state.local import LocalQuota, LocalRate, LocalRecords, LocalStore
from liveness_gateway.state.shared import BACKOFF_CAP_S, RedisStore
from prometheus_client import CollectorRegistry

from tests.redis_server import RedisServer


def _metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


# --- in-process -------------------------------------------------------------------------


async def test_local_rate_takes_its_burst_then_advises_one_tokens_time() -> None:
    rate = LocalRate(4.0, 3)
    assert [await rate.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await rate.take() == pytest.approx(0.25)


async def test_local_quota_counts_per_utc_day() -> None:
    now = [86_400.0 * 20_000 + 86_000.0]
    quota = LocalQuota(2, clock=lambda: now[0])
    assert [await quota.take() for _ in range(2)] == [0.0, 0.0]
    assert await quota.take() == pytest.approx(400.0)
    now[0] += 400.0  # midnight
    assert await quota.take() == 0.0


async def test_local_records_claim_release_put_and_expire() -> None:
    now = [0.0]
    records = LocalRecords(clock=lambda: now[0], max_records=3)
    assert await records.claim("k", b"mine", 5) is None
    assert await records.claim("k", b"yours", 5) == b"mine"
    await records.release("k", b"yours")  # not the owner: nothing happens
    assert await records.get("k") == b"mine"
    await records.release("k", b"mine")
    assert await records.get("k") is None
    await records.put("k", b"done", 1)
    now[0] += 1.0
    assert await records.get("k") is None
    for i in range(5):  # bounded: the oldest go first
        await records.put(f"n{i}", b"v", 10)
    assert len(records) == 3
    assert await records.get("n0") is None
    assert await records.get("n4") == b"v"


async def test_local_waiters_are_woken_when_the_owner_finishes() -> None:
    records = LocalRecords()
    await records.claim("k", b"p", 10)
    waiter = asyncio.create_task(records.changed("k", 5))
    await asyncio.sleep(0)
    started = time.monotonic()
    await records.put("k", b"done", 10)
    await waiter
    assert time.monotonic() - started < 1


def test_without_a_url_the_store_is_this_process() -> None:
    assert isinstance(open_store(StateConfig(), _metrics()), LocalStore)


# --- Redis: the scripts ---------------------------------------------------------------------


def _redis(server: RedisServer, metrics: Metrics | None = None, **config: object) -> RedisStore:
    store = open_store(
        StateConfig(url=server.url, timeout_s=1.0, **config),  # type: ignore[arg-type]
        metrics or _metrics(),
    )
    assert isinstance(store, RedisStore)
    return store


async def test_the_rate_script_is_exact_across_processes(redis_server: RedisServer) -> None:
    """Three stores (three connection pools, as three processes have), 60 concurrent takes of
    a 10-burst bucket at 0.5/s: exactly 10 admitted, whatever the interleaving."""
    stores = [_redis(redis_server) for _ in range(3)]
    try:
        limits = [s.rate(CALLER_RATE, "exact", 0.5, 10) for s in stores]
        waits = await asyncio.gather(*(limits[i % 3].take() for i in range(60)))
        assert sum(1 for w in waits if w == 0.0) == 10
        refused = [w for w in waits if w]
        # One token every 2 s: the advice is when the next one is there, never more than 2 s.
        assert all(0 < w <= 2.0 for w in refused)
    finally:
        for store in stores:
            await store.close()


async def test_the_rate_script_refills_at_the_rate(redis_server: RedisServer) -> None:
    store = _redis(redis_server)
    try:
        limit = store.rate(VENDOR_RATE, "refill", 20.0, 2)
        assert [await limit.take() for _ in range(2)] == [0.0, 0.0]
        wait = await limit.take()
        assert 0 < wait <= 0.05
        await asyncio.sleep(wait + 0.01)
        assert await limit.take() == 0.0
    finally:
        await store.close()


async def test_the_quota_script_is_exact_across_processes(redis_server: RedisServer) -> None:
    stores = [_redis(redis_server) for _ in range(3)]
    try:
        quotas = [s.quota(CALLER_QUOTA, "daily", 30) for s in stores]
        waits = await asyncio.gather(*(quotas[i % 3].take() for i in range(90)))
        assert sum(1 for w in waits if w == 0.0) == 30
        to_midnight = 86_400 - time.time() % 86_400
        assert all(abs(w - to_midnight) < 5 for w in waits if w)
        # Stored per UTC day of the server's clock, expiring the day after.
        with redis_server.client() as client:
            key = "liveness-gateway:caller_quota:daily"
            assert client.hget(key, "used") == b"30"
            assert int(client.hget(key, "day") or 0) == int(time.time() // 86_400)
            assert 0 < client.ttl(key) <= 2 * 86_400
    finally:
        for store in stores:
            await store.close()


async def test_records_in_redis_claim_once_and_release_only_the_owners(
    redis_server: RedisServer,
) -> None:
    one, two = _redis(redis_server), _redis(redis_server)
    try:
        assert await one.records.claim("idem:c:1", b"P-one", 5) is None
        assert await two.records.claim("idem:c:1", b"P-two", 5) == b"P-one"
        await two.records.release("idem:c:1", b"P-two")
        assert await one.records.get("idem:c:1") == b"P-one"
        await one.records.put("idem:c:1", b"D-done", 5)
        assert await two.records.get("idem:c:1") == b"D-done"
        await one.records.release("idem:c:1", b"P-one")  # no longer its claim
        assert await two.records.get("idem:c:1") == b"D-done"
        with redis_server.client() as client:
            assert 0 < client.pttl("liveness-gateway:idem:c:1") <= 5000
    finally:
        await one.close()
        await two.close()


# --- Redis slow or down ---------------------------------------------------------------------


def _dead(tmp_path: Path, metrics: Metrics, **config: object) -> RedisStore:
    store = open_store(
        StateConfig(url=f"unix://{tmp_path}/nobody.sock", timeout_s=0.1, **config),  # type: ignore[arg-type]
        metrics,
    )
    assert isinstance(store, RedisStore)
    return store


async def test_unreachable_redis_falls_back_to_local_shares(tmp_path: Path) -> None:
    metrics = _metrics()
    store = _dead(tmp_path, metrics, expected_processes=3)
    # The backoff's clock stands still, so no probe is due however slow this machine is.
    store.link._clock = lambda: 0.0
    try:
        rate = store.rate(CALLER_RATE, "c", 9.0, 6)  # a share of 3/s, burst 2
        quota = store.quota(CALLER_QUOTA, "c", 30)  # open up to 10 here
        started = time.monotonic()
        waits = [await rate.take() for _ in range(4)]
        assert waits[:2] == [0.0, 0.0]
        assert waits[2] == pytest.approx(1 / 3)
        counted = [await quota.take() for _ in range(12)]
        assert counted.count(0.0) == 10
        assert time.monotonic() - started < 1.0
        assert _value(metrics, "liveness_gateway_state_fallback_active") == 1
        # One failed call, then backing off: Redis is not called for every limit check.
        assert _value(metrics, "liveness_gateway_state_errors_total", operation="rate") == 1
        assert (
            _value(
                metrics,
                "liveness_gateway_state_fallback_calls_total",
                limit="caller_quota",
                policy="local",
            )
            == 12
        )
    finally:
        await store.close()


async def test_fail_closed_answers_state_unavailable_at_once(tmp_path: Path) -> None:
    store = _dead(tmp_path, _metrics(), rate_fallback="closed", quota_fallback="closed")
    try:
        for limit in (
            store.rate(VENDOR_RATE, "linkface", 5.0, 5),
            store.quota(CALLER_QUOTA, "c", 30),
        ):
            with pytest.raises(GatewayError) as caught:
                await limit.take()
            err = caught.value
            assert err.reason == errors.STATE_UNAVAILABLE
            assert err.code == grpc.StatusCode.UNAVAILABLE
            assert err.retry_delay_s is not None
            assert 0 < err.retry_delay_s <= BACKOFF_CAP_S
    finally:
        await store.close()


async def test_a_slow_redis_is_cut_at_the_timeout(redis_server: RedisServer) -> None:
    metrics = _metrics()
    store = open_store(StateConfig(url=redis_server.url, timeout_s=0.1), metrics)
    try:
        quota = store.quota(CALLER_QUOTA, "slow", 5)
        assert await quota.take() == 0.0  # connected, script loaded
        with redis_server.client() as client:
            client.execute_command("CLIENT", "PAUSE", "1000", "ALL")
        started = time.monotonic()
        assert await quota.take() == 0.0  # the local share, after 0.1 s
        assert time.monotonic() - started < 0.5
        assert _value(metrics, "liveness_gateway_state_fallback_active") == 1
        assert _value(metrics, "liveness_gateway_state_errors_total", operation="quota") == 1
    finally:
        await store.close()


async def test_recovery_is_automatic_after_a_restart(redis_server: RedisServer) -> None:
    metrics = _metrics()
    store = _redis(redis_server, metrics)
    try:
        limit = store.rate(CALLER_RATE, "back", 1000.0, 1000)
        assert await limit.take() == 0.0
        redis_server.stop()
        assert await limit.take() == 0.0  # local share
        assert _value(metrics, "liveness_gateway_state_fallback_active") == 1
        redis_server.start()  # empty: the scripts are loaded again on NOSCRIPT
        deadline = time.monotonic() + 4 * BACKOFF_CAP_S
        while _value(metrics, "liveness_gateway_state_fallback_active") == 1:
            assert time.monotonic() < deadline, "no recovery"
            await limit.take()
            await asyncio.sleep(0.05)
        with redis_server.client() as client:
            assert client.exists("liveness-gateway:caller_rate:back")
    finally:
        await store.close()


async def test_a_password_protected_redis_needs_the_password(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with redis_server.client() as client:
        client.config_set("requirepass", "s3cret-state")
    metrics = _metrics()
    right = open_store(StateConfig(url=redis_server.url, password="s3cret-state"), metrics)
    wrong = open_store(StateConfig(url=redis_server.url, password="nope"), _metrics())
    try:
        assert await right.quota(CALLER_QUOTA, "pw", 1).take() == 0.0
        assert await right.quota(CALLER_QUOTA, "pw", 1).take() > 0  # counted in Redis
        assert _value(metrics, "liveness_gateway_state_fallback_active") == 0
        assert await wrong.quota(CALLER_QUOTA, "pw", 1).take() == 0.0  # its local share
        assert isinstance(wrong, RedisStore)
        assert wrong.link.down
    finally:
        await right.close()
        await wrong.close()


def test_the_password_comes_from_the_environment_or_a_file_never_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from liveness_gateway.cli import _parser

    from tests.test_settings import config

    def load(argv: list[str], env: dict[str, str]) -> StateConfig:
        return config(argv, env).state

    secret = tmp_path / "redis-password"
    secret.write_text("from-a-file\n")
    url = ["--state-url", "redis://redis.internal:6379/0"]
    assert load(url, {"LIVENESS_STATE_PASSWORD": "from-env"}).password == "from-env"
    assert load(url, {"LIVENESS_STATE_PASSWORD_FILE": str(secret)}).password == "from-a-file"
    with pytest.raises(ConfigError, match="only one of"):
        load(url, {"LIVENESS_STATE_PASSWORD": "a", "LIVENESS_STATE_PASSWORD_FILE": str(secret)})
    with pytest.raises(ConfigError, match="cannot read"):
        load(url, {"LIVENESS_STATE_PASSWORD_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match=r"--state-url \(LIVENESS_STATE_URL\).*password"):
        load(["--state-url", "redis://:pw@redis.internal:6379"], {})
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--help"])
    serve_help = capsys.readouterr().out
    assert "--state-url" in serve_help
    assert "--state-password" not in serve_help
