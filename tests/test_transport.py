"""The multipart body the transport writes: what a multipart parser reads back from it, sent
over a real loopback connection by the gateway's HTTP client."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web
from liveness_gateway import errors
from liveness_gateway.transport import MultipartBody, VendorTransport, build_body, new_client
from liveness_gateway.vendors.base import FormPart, VendorRequest


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
    client = new_client()
    try:
        reply = await client.post(
            f"http://127.0.0.1:{port}/",
            body.chunks,
            content_type=body.content_type,
            headers={},
            timeout_s=10,
            connect_timeout_s=3,
            max_reply_bytes=2**20,
        )
        assert reply.status == 200
        parsed: dict[str, list[object]] = json.loads(reply.body)
        return parsed
    finally:
        await client.close()
        await runner.cleanup()


def _digest(data: bytes) -> list[object]:
    return ["liveness_data", hashlib.sha256(data).hexdigest(), len(data)]


@pytest.mark.parametrize("size", [1, 1024, 256 * 1024 + 7, 5 * 1024 * 1024])
async def test_body_parses_back_to_the_parts(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    body = build_body(_request(data))
    assert len(body.as_bytes()) == body.size
    parts = await _post(body)
    assert parts["liveness_data_file"] == _digest(data)
    assert parts["api_id"][1] == hashlib.sha256(b"id-1").hexdigest()
    assert parts["api_secret"][1] == hashlib.sha256(b'se"cr\\et').hexdigest()
    assert parts["api_id"][0] is None
    assert body.content_type.startswith("multipart/form-data; boundary=")
    if size > 256 * 1024:
        assert any(chunk is data for chunk in body.chunks)  # large payloads are not copied


async def test_small_bodies_are_one_piece_with_the_process_boundary() -> None:
    first, second = build_body(_request(b"a")), build_body(_request(b"b" * 1000))
    assert first.content_type == second.content_type  # one Content-Type for the vendor to parse
    assert len(second.chunks) == 1  # sent with the request head, in one segment


async def test_a_part_containing_the_boundary_gets_another() -> None:
    usual = build_body(_request(b"a")).content_type.split("boundary=")[1]
    for hostile in (
        b"x\r\n--" + usual.encode() + b"\r\nContent-Disposition: form-data; name=api_id\r\n",
        b"--" + usual.encode() + b"--",
    ):
        body = build_body(_request(hostile))
        boundary = body.content_type.split("boundary=")[1]
        assert boundary != usual
        assert boundary.encode() not in hostile
        parts = await _post(body)
        assert parts["liveness_data_file"] == _digest(hostile)
        assert set(parts) == {"api_id", "api_secret", "liveness_data_file"}


async def test_each_form_renders_its_own_text_values() -> None:
    """The text around the data is rendered once per form (cached): forms that differ only
    in a text value (another credential, the url or id a caller names) stay apart, and a
    text value holding the boundary still gets another one."""
    usual = build_body(_request(b"a")).content_type.split("boundary=")[1]
    for value in ("id-2", "http://127.0.0.1:1/a", "id-2", f"x--{usual}"):
        request = replace(
            _request(b"data"),
            parts=[
                FormPart("api_id", value),
                FormPart("liveness_data_url", "u"),
                FormPart("liveness_data_file", b"data", filename="liveness_data"),
            ],
        )
        body = build_body(request)
        parts = await _post(body)
        assert parts["api_id"][1] == hashlib.sha256(value.encode()).hexdigest()
        assert parts["liveness_data_file"] == _digest(b"data")
        assert (body.content_type.split("boundary=")[1] == usual) == (usual not in value)


async def test_large_bodies_each_have_their_own_boundary() -> None:
    data = b"a" * (256 * 1024 + 1)
    first, second = build_body(_request(data)), build_body(_request(data))
    assert first.content_type != second.content_type


async def _vendor(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/detect", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.mark.parametrize("compressed", [False, True])
async def test_reply_cap_holds_for_announced_and_compressed_lengths(compressed: bool) -> None:
    """A reply within the cap is read whole; one that decompresses past it is refused, even
    though its announced (compressed) length is within the cap."""
    small, big = b'{"status": "OK"}', b'{"pad": "' + b"0" * 4096 + b'"}'

    async def reply(request: web.Request) -> web.Response:
        body = big if request.query.get("big") else small
        if not compressed:
            return web.Response(body=body, content_type="application/json")
        headers = {"Content-Encoding": "gzip"}
        return web.Response(body=gzip.compress(body), headers=headers, content_type="text/json")

    runner = await _vendor(reply)
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/detect"
    client = new_client()
    transport = VendorTransport(client)
    capped = replace(_request(b"a"), url=url, max_reply_bytes=1024)
    try:
        got = await transport.send(capped, timeout_s=5, caller_bound=False)
        assert got.body == small
        with pytest.raises(errors.GatewayError) as caught:
            await transport.send(
                replace(capped, url=url + "?big=1"), timeout_s=5, caller_bound=False
            )
        assert caught.value.reason == errors.VENDOR_BAD_REPLY
        assert "larger than 1024 bytes" in caught.value.message
    finally:
        await client.close()
        await runner.cleanup()
