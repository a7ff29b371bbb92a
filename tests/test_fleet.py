"""Fleet mode end to end: real gateway processes sharing one real Redis (issue #18).

- three gateways, one caller with a daily quota of 30 calling 90 times across them: 30 OK;
- a caller limited to 5/s gets 5/s over the three together, not 15/s;
- Redis stopped mid-run: the documented fallback (local shares), every call answered within
  its deadline, the metrics say so; Redis restarted: fleet-wide again;
- an Upload request_id sent twice, and twice at once, through two gateways in front of one
  sandbox process: one vendor call (the sandbox's own counter), one liveness_data_id; other
  input under the same id refused.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.auth import hash_token
from liveness_gateway.config import ResilienceConfig, StateConfig
from liveness_gateway.sandbox import RunningSandbox
from liveness_gateway.server import RunningGateway
from liveness_gateway.vendors import linkface

from tests.conftest import CHANNEL_OPTIONS
from tests.metrics_text import sample, scrape
from tests.processes import Process, Processes
from tests.redis_server import RedisServer
from tests.status import failure_of

QUOTA_TOKEN, RATE_TOKEN = "quota-token", "rate-token"
CALLERS = f"""
[[caller]]
name = "quota"
token_sha256 = "{hash_token(QUOTA_TOKEN)}"
daily_quota = 30

[[caller]]
name = "rate"
token_sha256 = "{hash_token(RATE_TOKEN)}"
rate_per_s = 5
burst = 5
"""
DEADLINE_S = 2.0
DATA = b"SANDBOX:score=0.2"


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@asynccontextmanager
async def _stubs(
    addresses: Sequence[str],
) -> AsyncIterator[list[liveness_pb2_grpc.LivenessCheckStub]]:
    channels = [grpc.aio.insecure_channel(a, options=CHANNEL_OPTIONS) for a in addresses]
    try:
        yield [liveness_pb2_grpc.LivenessCheckStub(c) for c in channels]
    finally:
        for channel in channels:
            await channel.close()


async def _detect(stub: liveness_pb2_grpc.LivenessCheckStub, token: str) -> tuple[str, float]:
    """The outcome (OK or the reason) and how long the call took."""
    started = time.monotonic()
    try:
        await stub.Detect(
            pb.DetectRequest(liveness_data=DATA), metadata=_bearer(token), timeout=DEADLINE_S
        )
        outcome = "OK"
    except grpc.aio.AioRpcError as err:
        outcome = failure_of(err).info.reason
    return outcome, time.monotonic() - started


async def _spread(
    stubs: Sequence[liveness_pb2_grpc.LivenessCheckStub], token: str, calls: int
) -> list[tuple[str, float]]:
    """``calls`` calls, round robin over the gateways, a few at a time."""
    results: list[tuple[str, float]] = []
    for start in range(0, calls, 9):
        batch = [_detect(stubs[i % len(stubs)], token) for i in range(start, min(calls, start + 9))]
        results += await asyncio.gather(*batch)
    return results


async def _rate_window(
    stubs: Sequence[liveness_pb2_grpc.LivenessCheckStub], window_s: float
) -> Counter[str]:
    """One loop per gateway calling every 40 ms for ``window_s`` (75 calls/s offered)."""
    outcomes: Counter[str] = Counter()
    end = time.monotonic() + window_s

    async def loop(stub: liveness_pb2_grpc.LivenessCheckStub) -> None:
        while time.monotonic() < end:
            outcome, _ = await _detect(stub, RATE_TOKEN)
            outcomes[outcome] += 1
            await asyncio.sleep(0.04)

    await asyncio.gather(*(loop(s) for s in stubs))
    return outcomes


async def _fallback_active(gateway: Process) -> float:
    return sample(await scrape(gateway.metrics_port or 0), "liveness_gateway_state_fallback_active")


def _fleet(processes: Processes, redis_server: RedisServer, tmp_path: Path) -> list[Process]:
    callers = tmp_path / "callers.toml"
    callers.write_text(CALLERS)
    flags = (
        "--callers-file", str(callers),
        "--state-url", redis_server.url,
        "--state-expected-processes", "3",
        "--state-timeout", "0.1",
        "--log-format", "text",
    )  # fmt: skip
    return [processes.gateway(*flags) for _ in range(3)]


async def test_three_gateways_share_quota_and_rate_and_survive_a_redis_outage(
    processes: Processes, redis_server: RedisServer, tmp_path: Path
) -> None:
    gateways = _fleet(processes, redis_server, tmp_path)
    async with _stubs([g.address for g in gateways]) as stubs:
        # 1. A daily quota of 30, 90 calls over three gateways: exactly 30 OK.
        results = await _spread(stubs, QUOTA_TOKEN, 90)
        outcomes = Counter(outcome for outcome, _ in results)
        assert outcomes == {"OK": 30, "CALLER_QUOTA_EXCEEDED": 60}, outcomes

        # 2. 5/s with a burst of 5, offered 75/s over three gateways for 4 s. GCRA admits the
        # burst plus one call per 0.2 s of the window: 5 + 4 x 5 = 25. The window's edges
        # (the first and the last loop's call are up to one 40 ms period plus a call's
        # latency from its ends) move that by at most one token either side; with three
        # per-process buckets it would be 3 x 25 = 75.
        window = await _rate_window(stubs, 4.0)
        assert window["OK"] + window["CALLER_RATE_LIMITED"] == sum(window.values()), window
        assert 23 <= window["OK"] <= 27, window

        # 3. Redis stops: every call still answers within its deadline, from the fallback.
        redis_server.stop()
        await asyncio.sleep(1.1)  # a fresh second of rate for the local shares
        outage = await _spread(stubs, RATE_TOKEN, 18)
        assert all(seconds < DEADLINE_S for _, seconds in outage), outage
        counted = Counter(outcome for outcome, _ in outage)
        # Local shares: 5/s / 3 processes, burst max(1, 5 // 3) = 1 per gateway.
        assert counted["OK"] >= 3, counted
        assert set(counted) <= {"OK", "CALLER_RATE_LIMITED"}, counted
        quota_outage = await _spread(stubs, QUOTA_TOKEN, 36)
        assert all(seconds < DEADLINE_S for _, seconds in quota_outage)
        # Fail open up to ceil(30 / 3) = 10 per gateway and day.
        assert Counter(o for o, _ in quota_outage) == {"OK": 30, "CALLER_QUOTA_EXCEEDED": 6}
        for gateway in gateways:
            text = await scrape(gateway.metrics_port or 0)
            assert sample(text, "liveness_gateway_state_fallback_active") == 1
            assert sample(text, "liveness_gateway_state_errors_total", operation="rate") >= 1
            assert (
                sample(
                    text,
                    "liveness_gateway_state_fallback_calls_total",
                    limit="caller_quota",
                    policy="local",
                )
                == 12
            )

        # 4. Redis is back (empty: no persistence in the test): each gateway probes it again
        # within its backoff and the limits are fleet-wide again.
        redis_server.start()
        deadline = time.monotonic() + 15
        while any([await _fallback_active(g) for g in gateways]):
            assert time.monotonic() < deadline, "the gateways did not go back to Redis"
            await _spread(stubs, RATE_TOKEN, 3)
            await asyncio.sleep(0.2)
        again = Counter(o for o, _ in await _spread(stubs, QUOTA_TOKEN, 90))
        assert again == {"OK": 30, "CALLER_QUOTA_EXCEEDED": 60}, again


async def _sandbox_uploads(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sandbox/stats") as resp:
        stats = await resp.json()
    return int(stats["requests"].get(linkface.UPLOAD.path, 0))


async def test_an_upload_request_id_is_honoured_across_gateways(
    processes: Processes, redis_server: RedisServer
) -> None:
    sandbox = processes.sandbox()
    env = {
        f"{vendor}_{key}": value
        for vendor in ("LINKFACE", "ACCUAUTH")
        for key, value in (
            ("BASE_URL", sandbox.url),
            ("API_ID", "sandbox-id"),
            ("API_SECRET", "sandbox-secret"),
        )
    }
    env["LIVENESS_URL_ALLOW_HOSTS"] = "127.0.0.1"
    # Dedupe off: what saves the vendor call here is the request_id alone.
    flags = ("--state-url", redis_server.url, "--upload-dedupe-ttl", "0")
    one, two = (processes.gateway(*flags, sandbox=False, env=env) for _ in range(2))
    async with _stubs([one.address, two.address]) as (a, b):
        rid = str(uuid.uuid4())
        request = pb.UploadRequest(liveness_data=b"SANDBOX:score=0.4\nfleet", request_id=rid)
        first = await a.Upload(request, timeout=10)
        resent = await b.Upload(request, timeout=10)
        assert resent.liveness_data_id == first.liveness_data_id
        assert await _sandbox_uploads(sandbox.url) == 1

        # Twice at once, through both gateways, while the vendor takes 500 ms.
        slow = pb.UploadRequest(
            liveness_data=b"SANDBOX:score=0.4;delay_ms=500\nfleet", request_id=str(uuid.uuid4())
        )
        both = await asyncio.gather(a.Upload(slow, timeout=10), b.Upload(slow, timeout=10))
        assert both[0] == both[1]
        assert await _sandbox_uploads(sandbox.url) == 2

        # Other input under the same id: refused, whichever gateway it reaches.
        for stub in (a, b):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Upload(
                    pb.UploadRequest(liveness_data=b"SANDBOX:score=0.4\nother", request_id=rid),
                    timeout=10,
                )
            assert failure_of(caught.value).info.reason == "REQUEST_ID_REUSED"
        assert await _sandbox_uploads(sandbox.url) == 2
        replays = [
            sample(
                await scrape(g.metrics_port or 0),
                "liveness_gateway_idempotent_replays_total",
                rpc="Upload",
            )
            for g in (one, two)
        ]
    assert sum(replays) == 2


async def test_the_vendor_rate_is_shared_by_gateways_on_one_redis(
    make_gateway: Callable[..., Awaitable[RunningGateway]],
    redis_server: RedisServer,
    sandbox: RunningSandbox,
) -> None:
    """Two gateways, a vendor rate of 2/s with a burst of 2: two calls reach the vendor in all,
    and the refusals' RetryInfo is the shared bucket's (at most one token's 0.5 s)."""
    state = StateConfig(url=redis_server.url, timeout_s=1.0)
    limits = ResilienceConfig(vendor_rate_per_s=2.0, vendor_rate_burst=2)
    gateways = [await make_gateway(state=state, resilience=limits) for _ in range(2)]
    outcomes: list[str] = []
    delays: list[float] = []
    async with _stubs([g.address for g in gateways]) as stubs:
        for i in range(6):
            try:
                await stubs[i % 2].Detect(pb.DetectRequest(liveness_data=DATA), timeout=5)
                outcomes.append("OK")
            except grpc.aio.AioRpcError as err:
                failure = failure_of(err)
                outcomes.append(failure.info.reason)
                assert failure.retry_delay_s is not None
                delays.append(failure.retry_delay_s)
    assert Counter(outcomes) == {"OK": 2, "GATEWAY_RATE_LIMITED": 4}, outcomes
    assert sandbox.state.requests[linkface.DETECT.path] == 2
    assert all(0 < d <= 0.5 for d in delays), delays
