"""The multipart body the transport writes: what a multipart parser reads back from it."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest
from aiohttp import web
from liveness_gateway.transport import MultipartBody, build_body
from liveness_gateway.vendors.base import FormPart, VendorRequest


class _Sink:
    """Collects what the body writes, as aiohttp's stream writer would send it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self.data += chunk
        self.writes += 1


def _request(data: bytes) -> VendorRequest:
    return VendorRequest(
        vendor="linkface",
        endpoint="detect",
        url="http://vendor.invalid/detect",
        parts=[
            FormPart("api_id", "id-1"),
            FormPart("api_secret", 'se"cr\\et'),
            FormPart("liveness_data_file", data, filename="liveness_data"),
        ],
    )


async def _echo(request: web.Request) -> web.Response:
    """Reads the form as the vendors' servers do, answers what it read."""
    parts = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        assert isinstance(part, aiohttp.BodyPartReader)
        data = bytes(await part.read())
        parts[part.name or ""] = [part.filename, hashlib.sha256(data).hexdigest(), len(data)]
    return web.json_response(parts)


async def _post(body: MultipartBody) -> dict[str, list[object]]:
    """Sends the body over a real loopback connection, as the transport does."""
    app = web.Application(client_max_size=16 * 2**20)
    app.router.add_post("/", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/", data=body) as resp,
        ):
            assert resp.status == 200
            parsed: dict[str, list[object]] = await resp.json()
            return parsed
    finally:
        await runner.cleanup()


def _digest(data: bytes) -> list[object]:
    return ["liveness_data", hashlib.sha256(data).hexdigest(), len(data)]


@pytest.mark.parametrize("size", [1, 1024, 256 * 1024 + 7, 5 * 1024 * 1024])
async def test_body_parses_back_to_the_parts(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    body = build_body(_request(data))
    sink = _Sink()
    await body.write(sink)  # type: ignore[arg-type]
    assert len(sink.data) == body.size
    assert bytes(sink.data) == await body.as_bytes()
    parts = await _post(body)
    assert parts["liveness_data_file"] == _digest(data)
    assert parts["api_id"][1] == hashlib.sha256(b"id-1").hexdigest()
    assert parts["api_secret"][1] == hashlib.sha256(b'se"cr\\et').hexdigest()
    assert parts["api_id"][0] is None
    assert body.content_type.startswith("multipart/form-data; boundary=")
    if size > 256 * 1024:
        assert sink.writes > 3  # large payloads go out in slices, letting the writer drain


async def test_body_honours_a_shorter_content_length() -> None:
    body = build_body(_request(b"abc" * 1000))
    sink = _Sink()
    await body.write_with_length(sink, 100)  # type: ignore[arg-type]
    assert bytes(sink.data) == (await body.as_bytes())[:100]


async def test_each_body_has_its_own_boundary() -> None:
    first, second = build_body(_request(b"a")), build_body(_request(b"a"))
    assert first.content_type != second.content_type
