"""The vendor calls' HTTP/1.1 client against scripted servers on loopback: what it sends,
when it reuses a connection, and how each way a reply can go wrong is reported."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import hashlib
import itertools
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liveness_gateway import http1

from tests.pki import Authority

Script = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    """One request as the server read it, and the connection to answer on."""

    head: bytes
    body: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    number: int  # of the request on its connection, from 1


@dataclass
class Server:
    url: str
    connections: int = 0
    requests: list[Exchange] = field(default_factory=list)


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


@asynccontextmanager
async def scripted(script: Script, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    """A server that reads each request whole and lets ``script`` answer it (or not)."""
    server = Server("")
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        writers.append(writer)
        number = 0
        try:
            while (request := await _read_request(reader)) is not None:
                number += 1
                exchange = Exchange(*request, reader, writer, number)
                server.requests.append(exchange)
                await script(exchange)
                if writer.is_closing():
                    return
        except ConnectionError:
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    scheme = "https" if tls else "http"
    server.url = f"{scheme}://127.0.0.1:{listener.sockets[0].getsockname()[1]}/detect?x=1"
    try:
        yield server
    finally:
        listener.close()
        for writer in writers:
            writer.close()
        await listener.wait_closed()


def ok(body: bytes = b'{"status": "OK"}', *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (head.encode(), len(body), body)


def answer(raw: bytes, *, close: bool = False) -> Script:
    async def script(exchange: Exchange) -> None:
        exchange.writer.write(raw)
        await exchange.writer.drain()
        if close:
            exchange.writer.close()

    return script


async def post(
    client: http1.Client, server: Server, body: bytes = b"data", **overrides: object
) -> http1.Reply:
    options: dict[str, object] = {
        "content_type": "application/octet-stream",
        "headers": {"X-Api-Id": "id-1"},
        "timeout_s": 5.0,
        "connect_timeout_s": 2.0,
        "max_reply_bytes": 1024,
        **overrides,
    }
    return await client.post(server.url, [body[:3], body[3:]], **options)  # type: ignore[arg-type]


@pytest.fixture
async def client() -> AsyncIterator[http1.Client]:
    client = http1.Client(user_agent="liveness-gateway-test")
    yield client
    await client.close()


@pytest.fixture
async def short_lived() -> AsyncIterator[http1.Client]:
    """A client whose idle connections expire after 50 ms."""
    client = http1.Client(user_agent="liveness-gateway-test", keepalive_s=0.05)
    yield client
    await client.close()


async def test_the_request_is_what_was_asked_for(client: http1.Client) -> None:
    async with scripted(answer(ok(b"{}", "Retry-After: 7"))) as server:
        reply = await post(client, server, b"x" * 5000)
    assert (reply.status, reply.body, reply.retry_after) == (200, b"{}", "7")
    request = server.requests[0]
    lines = request.head.decode().split("\r\n")
    assert lines[0] == "POST /detect?x=1 HTTP/1.1"
    port = server.url.split(":")[2].split("/")[0]
    assert {
        f"Host: 127.0.0.1:{port}",
        "User-Agent: liveness-gateway-test",
        "Content-Type: application/octet-stream",
        "Content-Length: 5000",
        "X-Api-Id: id-1",
    } <= set(lines)
    assert request.body == b"x" * 5000


async def test_a_large_body_arrives_whole(client: http1.Client) -> None:
    """Past one write, the body goes out in slices as the socket takes them."""
    data = bytes(range(256)) * (5 * 4096)  # 5 MiB

    async def digest(exchange: Exchange) -> None:
        exchange.writer.write(ok(hashlib.sha256(exchange.body).hexdigest().encode()))

    async with scripted(digest) as server:
        reply = await post(client, server, data, max_reply_bytes=100)
    assert reply.body == hashlib.sha256(data).hexdigest().encode()


async def test_keep_alive_reuses_one_connection(client: http1.Client) -> None:
    async with scripted(answer(ok())) as server:
        for _ in range(3):
            assert (await post(client, server)).status == 200
    assert (server.connections, [r.number for r in server.requests]) == (1, [1, 2, 3])


async def test_connection_close_is_honoured(client: http1.Client) -> None:
    async with scripted(answer(ok(b"{}", "Connection: close"))) as server:
        for _ in range(2):
            assert (await post(client, server)).body == b"{}"
    assert server.connections == 2


async def test_an_idle_connection_past_the_keep_alive_time_is_not_reused(
    short_lived: http1.Client,
) -> None:
    async with scripted(answer(ok())) as server:
        await post(short_lived, server)
        await post(short_lived, server)  # at once: reused
        await asyncio.sleep(0.1)
        await post(short_lived, server)
    assert server.connections == 2


async def test_a_connection_the_vendor_closed_while_idle_is_not_reused(
    client: http1.Client,
) -> None:
    async with scripted(answer(ok(), close=True)) as server:  # closes without saying so
        for _ in range(3):
            await post(client, server)
            await asyncio.sleep(0.02)  # the FIN arrives
    assert server.connections == 3


@pytest.mark.parametrize(
    "raw",
    [
        # announced, chunked, and gzip that inflates past the cap (a bomb of 1 MiB of zeros)
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"400\r\n"
        + b"a" * 1024
        + b"\r\n"
        + b"1\r\nb\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(gzip.compress(b"0" * 2**20)), gzip.compress(b"0" * 2**20)),
    ],
    ids=["announced", "chunked", "gzip-bomb"],
)
async def test_a_reply_past_the_cap_is_refused(client: http1.Client, raw: bytes) -> None:
    async with scripted(answer(raw)) as server:
        with pytest.raises(http1.ReplyTooLargeError) as caught:
            await post(client, server)
        assert caught.value.status == 200
    assert client.connections == 0  # the rest of that reply is not read: dropped


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
async def test_compressed_replies_are_inflated(client: http1.Client, encoding: str) -> None:
    text = b'{"status": "OK", "score": 0.5}' * 20
    packed = {"gzip": gzip.compress, "deflate": zlib.compress, "raw deflate": _raw_deflate}[
        encoding
    ](text)
    header = f"Content-Encoding: {encoding.split()[-1]}"
    async with scripted(answer(ok(packed, header))) as server:
        reply = await post(client, server)
        assert reply.body == text
        assert (await post(client, server)).body == text  # and the connection is reusable
    assert server.connections == 1


_OK = b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    ("raw", "failure"),
    [
        (_OK + b"Content-Length: 100\r\n\r\n0123456789", http1.BodyError),
        (_OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab", http1.BodyError),
        (_OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", http1.BodyError),
        (_OK + b"Content-Encoding: br\r\nContent-Length: 2\r\n\r\n{}", http1.BodyError),
        (_OK + b"Content-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope", http1.BodyError),
        (_OK + b"Content-Length: 10\r\n\r\n", http1.BodyError),
        (b"", http1.DisconnectedError),
        (b"HTTP/1.1 20", http1.DisconnectedError),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", http1.MalformedReplyError),
        (_OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", http1.MalformedReplyError),
    ],
    ids=[
        "cut-short", "chunk-cut-short", "bad-chunk", "unknown-encoding", "corrupt-gzip",
        "no-body", "closed-before-reply", "closed-in-head", "not-http", "two-lengths",
    ],
)  # fmt: skip
async def test_each_broken_reply_is_reported_and_the_connection_dropped(
    client: http1.Client, raw: bytes, failure: type[http1.HTTPError]
) -> None:
    async with scripted(answer(raw, close=True)) as server:
        with pytest.raises(failure):
            await post(client, server)
    assert client.connections == 0  # nothing kept


async def test_an_empty_compressed_body_is_empty(client: http1.Client) -> None:
    async with scripted(answer(ok(b"", "Content-Encoding: gzip"))) as server:
        reply = await post(client, server)
    assert (reply.status, reply.body) == (200, b"")


async def test_a_reply_delimited_by_the_end_of_the_connection(client: http1.Client) -> None:
    async with scripted(answer(b"HTTP/1.1 200 OK\r\n\r\n{}", close=True)) as server:
        assert (await post(client, server)).body == b"{}"
        assert (await post(client, server)).body == b"{}"
    assert server.connections == 2


async def test_an_interim_reply_is_skipped(client: http1.Client) -> None:
    raw = b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n" + ok(b"{}")
    async with scripted(answer(raw)) as server:
        reply = await post(client, server)
        assert (reply.status, reply.body) == (200, b"{}")
        assert (await post(client, server)).status == 200
    assert server.connections == 1


async def test_bytes_nobody_asked_for_end_the_connection(client: http1.Client) -> None:
    async def extra(exchange: Exchange) -> None:
        exchange.writer.write(ok(b"{}") + b"HTTP/1.1 408 Request Timeout\r\n\r\n")

    async with scripted(extra) as server:
        await post(client, server)
        await asyncio.sleep(0.02)
        assert (await post(client, server)).body == b"{}"
    assert server.connections == 2


async def test_the_total_timeout_and_cancellation_drop_the_connection(
    client: http1.Client,
) -> None:
    async def late(exchange: Exchange) -> None:
        if exchange.number == 1:
            await asyncio.sleep(0.5)  # past the first call's timeout
        exchange.writer.write(ok())

    async with scripted(late) as server:
        with pytest.raises(TimeoutError):
            await post(client, server, timeout_s=0.1)
        task = asyncio.create_task(post(client, server))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await post(client, server)).status == 200  # a fresh connection, not the late one
    assert server.connections in (2, 3)  # the cancelled call may not have connected yet
    assert [r.number for r in server.requests][-1] == 1


async def test_nothing_listening_is_a_connect_error(client: http1.Client) -> None:
    async with scripted(answer(ok())) as server:
        url = server.url
    with pytest.raises(http1.ConnectError):
        await client.post(
            url, [b"x"], content_type="a/b", headers={}, timeout_s=2,
            connect_timeout_s=1, max_reply_bytes=10,
        )  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Id": "a\r\nX-Injected: 1"},
        {"X-Id": "a\nb"},
        {"Bad Name": "v"},
        {"X-Id": "\0"},
        {"Host": "elsewhere"},
        {"content-length": "0"},
        {"Transfer-Encoding": "chunked"},
    ],
)
async def test_a_header_that_would_break_the_request_is_refused(
    client: http1.Client, headers: dict[str, str]
) -> None:
    async with scripted(answer(ok())) as server:
        with pytest.raises(ValueError, match="header"):
            await post(client, server, headers=headers)
    assert server.connections == 0


async def test_a_closed_client_refuses_and_closes_its_connections() -> None:
    client = http1.Client(user_agent="t")
    async with scripted(answer(ok())) as server:
        await post(client, server)
        await client.close()
        with pytest.raises(http1.ConnectError):
            await post(client, server)
    assert client.connections == 0


async def test_tls_is_verified_against_the_trusted_authorities(tmp_path: Path) -> None:
    """A vendor's certificate from an authority the client trusts: served and reused; from
    one it does not (the default trust store): no connection, nothing sent."""
    authority = Authority("vendor-ca")
    cert, key = authority.issue("vendor", server=True).write(tmp_path, "vendor")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cadata=authority.pem.decode())
    client = http1.Client(user_agent="t", ssl_context=trusting)
    try:
        async with scripted(answer(ok(b"{}")), tls=served) as server:
            assert (await post(client, server)).body == b"{}"
            assert (await post(client, server)).body == b"{}"
            assert server.connections == 1
            default = http1.Client(user_agent="t")
            with pytest.raises(http1.ConnectError):
                await post(default, server)
            await default.close()
        assert len(server.requests) == 2
    finally:
        await client.close()


class _Wire(asyncio.Transport):
    """The connection's transport, in memory: what the client writes is kept, and the test
    hands it the reply in the pieces it chooses (TCP may cut a reply anywhere)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


_TEXT = b'{"status": "OK", "score": 0.25, "pad": "' + b"p" * 300 + b'"}'
_GZ = gzip.compress(_TEXT)
_REPLIES = {
    "length": ok(_TEXT),
    "chunked": _OK + b"Transfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (_TEXT[:7], _TEXT[7:200], _TEXT[200:]))
    + b"0\r\n\r\n",
    "gzip-chunked": _OK + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n%s\r\n0\r\n\r\n" % (len(_GZ), _GZ),
    "interim": b"HTTP/1.1 100 Continue\r\n\r\n" + ok(_TEXT),
    "deflate": ok(zlib.compress(_TEXT), "Content-Encoding: deflate"),
    "raw-deflate": ok(_raw_deflate(_TEXT), "Content-Encoding: deflate"),
    "trailer": _OK + b"Transfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n"
    + b"%x\r\n%s\r\n0\r\nRetry-After: 99\r\nContent-Encoding: gzip\r\n\r\n" % (len(_TEXT), _TEXT),
    "until-close": _OK + b"\r\n" + _TEXT,
}  # fmt: skip


@given(
    form=st.sampled_from(sorted(_REPLIES)),
    cuts=st.lists(st.integers(min_value=1, max_value=max(map(len, _REPLIES.values()))), max_size=8),
)
@settings(max_examples=200, deadline=None)
def test_a_reply_cut_anywhere_reads_the_same(form: str, cuts: list[int]) -> None:
    raw = _REPLIES[form]
    points = sorted({0, len(raw), *(c for c in cuts if c < len(raw))})

    async def exchange() -> http1.Reply:
        origin = http1._Origin("127.0.0.1", 80, tls=False)
        connection = http1._Connection(asyncio.get_running_loop(), origin, lambda _: None)
        wire = _Wire()
        connection.connection_made(wire)
        pending = asyncio.ensure_future(connection.exchange(b"HEAD\r\n\r\n", [b"body"], 4, 4096))
        await asyncio.sleep(0)
        assert wire.sent == b"HEAD\r\n\r\nbody"
        for start, end in itertools.pairwise(points):
            connection.data_received(raw[start:end])
        if form == "until-close":
            connection.connection_lost(None)
        reply = await pending
        assert connection.reusable == (form != "until-close")
        return reply

    reply = asyncio.run(exchange())
    assert (reply.status, reply.body) == (200, _TEXT)
    assert reply.retry_after == ("3" if form == "trailer" else None)  # a trailer changes nothing


async def test_a_call_given_up_while_its_body_is_sent_leaves_nothing_behind(
    client: http1.Client,
) -> None:
    """A vendor that stops reading: the body waits for the socket, the timeout ends the
    call, the connection is closed, and its pending reply is not left to be logged as
    "exception never retrieved" when the close fails it."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    stalled = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        await stalled.wait()  # reads nothing more
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    try:
        with pytest.raises(TimeoutError):
            await client.post(
                url, [b"x" * (32 * 2**20)], content_type="a/b", headers={}, timeout_s=0.3,
                connect_timeout_s=1, max_reply_bytes=10,
            )  # fmt: skip
        assert client.connections == 0
        await asyncio.sleep(0.05)
        gc.collect()
        await asyncio.sleep(0)
        assert reported == []
    finally:
        stalled.set()
        listener.close()
        loop.set_exception_handler(None)


async def test_an_answer_before_the_whole_body_was_sent_ends_the_connection(
    client: http1.Client,
) -> None:
    """A vendor that answers a large upload early (413) and keeps the connection: the rest of
    the body is still owed, so the connection is not reused for the next request."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        if b"Content-Length: 4" in head and b"Content-Length: 4\r\n" in head:
            await reader.readexactly(4)
            writer.write(ok(b"{}"))
        else:
            writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # keeps the connection, reads what is left
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    options = {"content_type": "a/b", "headers": {}, "timeout_s": 5.0, "connect_timeout_s": 1.0}
    try:
        big = await client.post(url, [b"x" * (32 * 2**20)], max_reply_bytes=10, **options)  # type: ignore[arg-type]
        small = await client.post(url, [b"tiny"], max_reply_bytes=10, **options)  # type: ignore[arg-type]
        assert (big.status, small.status, small.body) == (413, 200, b"{}")
        assert connections == 2
    finally:
        listener.close()


async def test_a_reset_is_not_the_end_of_a_body_delimited_by_close(client: http1.Client) -> None:
    async def reset(exchange: Exchange) -> None:
        exchange.writer.write(_OK + b"\r\n" + b'{"sta')
        await exchange.writer.drain()
        sock = exchange.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        exchange.writer.transport.abort()  # RST, not FIN

    async with scripted(reset) as server:
        with pytest.raises(http1.BodyError):
            await post(client, server)


@pytest.mark.parametrize(
    "raw",
    [
        _OK + b"X-Big: " + b"a" * (100 * 1024) + b"\r\n\r\n",
        _OK + b"X-Endless: " + b"a" * (1024 * 1024),
        b"HTTP/1.1 100 Continue\r\n\r\n" * 9 + ok(),
    ],
    ids=["long-header", "endless-header", "endless-interim"],
)
async def test_a_reply_head_is_bounded(client: http1.Client, raw: bytes) -> None:
    async with scripted(answer(raw)) as server:
        with pytest.raises(http1.MalformedReplyError):
            await post(client, server)


async def test_the_start_of_an_unasked_reply_ends_the_connection(client: http1.Client) -> None:
    async with scripted(answer(ok(b"{}") + b"HTTP/1.1 2")) as server:
        await post(client, server)
        assert (await post(client, server)).body == b"{}"
    assert server.connections == 2


async def test_idle_connections_are_closed_when_old_or_closed_by_the_vendor(
    short_lived: http1.Client,
) -> None:
    client = short_lived
    async with scripted(answer(ok())) as server:
        await asyncio.gather(*(post(client, server) for _ in range(3)))
        assert client.connections == 3
        await asyncio.sleep(0.1)
        await post(client, server)  # all three were too old: closed, one new
        assert (client.connections, server.connections) == (1, 4)
    await asyncio.sleep(0.05)
    assert client.connections == 0  # that server's close reached the idle connection
    async with scripted(answer(ok(), close=True)) as server:
        await post(client, server)
        await asyncio.sleep(0.05)  # the vendor's FIN arrives
        assert client.connections == 0  # forgotten at once, not at the next call
