"""The sandbox as a vendor: talked to over HTTP directly, as another team's test would."""

from __future__ import annotations

import aiohttp
import pytest
from liveness_gateway.sandbox import RunningSandbox
from liveness_gateway.sandbox import vectors as v


def form(**fields: str | bytes) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        if isinstance(value, bytes):
            data.add_field(name, value, filename="blob")
        else:
            data.add_field(name, value)
    return data


async def post(
    url: str, data: aiohttp.FormData | aiohttp.MultipartWriter, **kw
) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(url, data=data, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_linkface_credentials_in_query_string_and_file_field(sandbox: RunningSandbox) -> None:
    creds = sandbox.config.linkface
    url = (
        f"{sandbox.url}/hackness/liveness_hack_detect"
        f"?api_id={creds.api_id}&api_secret={creds.api_secret}"
    )
    status, body = await post(url, form(file=b"SANDBOX:score=0.7"))
    assert status == 200
    assert body["status"] == "OK"
    assert body["score"] == "0.700000"  # documented quirk: a string


async def test_upload_reply_uses_image_id_like_the_sample(sandbox: RunningSandbox) -> None:
    creds = sandbox.config.linkface
    status, body = await post(
        f"{sandbox.url}/resources/upload_liveness_data",
        form(api_id=creds.api_id, api_secret=creds.api_secret, file=b"data"),
    )
    assert status == 200
    assert "image_id" in body
    assert "liveness_data_id" not in body


async def test_wrong_credentials_are_unauthorized(sandbox: RunningSandbox) -> None:
    status, body = await post(
        f"{sandbox.url}/hackness/liveness_hack_detect",
        form(api_id="x", api_secret="y", liveness_data_file=b"d"),
    )
    assert (status, body["status"]) == (401, "UNAUTHORIZED")
    assert body["request_id"].startswith("TID")
    status, body = await post(
        f"{sandbox.url}/face/liveness_anti_hack", form(image_id="i"), headers={"X-DF-API-ID": "x"}
    )
    assert (status, body["status"]) == (401, "UNAUTHORIZED")


async def test_missing_and_double_sources_are_invalid(sandbox: RunningSandbox) -> None:
    creds = sandbox.config.linkface
    url = f"{sandbox.url}/hackness/liveness_hack_detect"
    auth = {"api_id": creds.api_id, "api_secret": creds.api_secret}
    status, body = await post(url, form(**auth))
    assert (status, body["status"]) == (400, "INVALID_ARGUMENT")
    status, body = await post(url, form(**auth, liveness_data_file=b"a", liveness_data_id="b"))
    assert (status, body["status"]) == (400, "INVALID_ARGUMENT")


async def test_non_utf8_parameter_is_encoding_error(sandbox: RunningSandbox) -> None:
    creds = sandbox.config.linkface
    data = aiohttp.MultipartWriter("form-data")
    for name, value in (
        ("api_id", creds.api_id.encode()),
        ("api_secret", creds.api_secret.encode()),
        ("liveness_data_id", b"\xff\xfe"),  # a text part that is not UTF-8
    ):
        part = data.append(value, {"Content-Type": "text/plain"})
        part.set_content_disposition("form-data", name=name)
    status, body = await post(f"{sandbox.url}/hackness/liveness_hack_detect", data)
    assert (status, body["status"]) == (400, "ENCODING_ERROR")


async def test_unknown_path_is_vendor_not_found(sandbox: RunningSandbox) -> None:
    status, body = await post(f"{sandbox.url}/nope", form(a="b"))
    assert (status, body["status"]) == (404, "NOT_FOUND")


async def test_stats_endpoint_counts_requests(sandbox: RunningSandbox) -> None:
    await post(f"{sandbox.url}/nope", form(a="b"))
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.url}/_sandbox/stats") as resp,
    ):
        stats = await resp.json()
    assert stats["total"] == 1
    assert stats["requests"] == {"/nope": 1}


def test_vector_syntax() -> None:
    assert v.parse(b"plain bytes") is None
    vec = v.parse(b"SANDBOX:score=0.5; status=OUT_OF_QUOTA;delay_ms=10\npadding")
    assert vec == v.Vector(score=0.5, status="OUT_OF_QUOTA", delay_ms=10)
    assert v.parse(b"SANDBOX:") == v.Vector()


@pytest.mark.parametrize(
    "bad",
    [
        b"SANDBOX:score=2",
        b"SANDBOX:colour=red",
        b"SANDBOX:score",
        b"SANDBOX:http=99",
        b"SANDBOX:delay_ms=999999",
        b"SANDBOX:body=xml",
        b"SANDBOX:status=a b",
    ],
)
def test_malformed_vectors_are_refused(bad: bytes) -> None:
    with pytest.raises(v.VectorError):
        v.parse(bad)


def test_default_score_formula_is_stable() -> None:
    # The README documents the formula: first 8 bytes of SHA-256 / 2**64, 6 places.
    assert v.default_score(b"x") == 0.177507  # sha256("x") starts 2d711642b726b044
    assert v.default_score(b"") == 0.889416  # sha256("") starts e3b0c44298fc1c14


def test_default_score_is_deterministic_and_in_range() -> None:
    scores = [v.default_score(bytes([i])) for i in range(200)]
    assert all(0.0 <= s < 1.0 for s in scores)
    assert scores == [v.default_score(bytes([i])) for i in range(200)]
    assert len(set(scores)) > 190


async def test_capacity_mode_queues_past_its_capacity() -> None:
    """Two slots, 200 ms each: six requests at once are served in three waves, so the
    sandbox's latency grows with its own in-flight count past its capacity."""
    import asyncio
    import time

    from liveness_gateway.sandbox import SandboxConfig, start_sandbox

    running = await start_sandbox(SandboxConfig.generate(latency_ms=200, capacity=2))
    creds = running.config.linkface
    url = f"{running.url}/hackness/liveness_hack_detect"

    async def one(session: aiohttp.ClientSession) -> float:
        started = time.monotonic()
        data = form(api_id=creds.api_id, api_secret=creds.api_secret, file=b"SANDBOX:score=0.1")
        async with session.post(url, data=data) as resp:
            assert resp.status == 200
        return time.monotonic() - started

    try:
        async with aiohttp.ClientSession() as session:
            alone = await one(session)
            waves = sorted(await asyncio.gather(*(one(session) for _ in range(6))))
            async with session.get(f"{running.url}/_sandbox/stats") as resp:
                stats = await resp.json()
    finally:
        await running.stop()
    assert 0.2 <= alone < 0.4
    assert all(0.2 <= t < 0.4 for t in waves[:2])
    assert all(0.4 <= t < 0.6 for t in waves[2:4])
    assert all(0.6 <= t < 0.8 for t in waves[4:])
    assert stats["latency"]["count"] == 7
    # the third wave waited two waves: ~600 ms from its arrival, less the time the client
    # took to send the six requests (tens of ms on a busy machine); two waves would be ~400
    assert 540 <= stats["latency"]["max_ms"] < 700


def test_capacity_and_latency_are_checked() -> None:
    from liveness_gateway.sandbox import SandboxConfig

    with pytest.raises(ValueError, match="capacity"):
        SandboxConfig.generate(capacity=-1)
