"""The vendor calls' HTTP/1.1 client: one POST, one bounded reply, pooled keep-alive connections.

The gateway needs one shape of exchange: POST a body it built to a configured vendor, read a
reply of bounded size, no redirects, cookies, proxies or retries (the policy above decides
those). aiohttp's client does that and much more, and its request machinery was about a
fifth of the gateway's CPU per call (bench/README.md, "A client of our own"); this module is
the part of it the gateway uses, on asyncio's transports (TLS included) and llhttp, the
HTTP parser of Node.js, through httptools (as uvicorn uses it). Nothing of the reply is
parsed here but by llhttp: status line, headers, lengths and chunked framing.

What it guarantees, each tested in tests/test_http1.py:

- a connection is reused only after a complete reply that allows keep-alive, only while it
  has been idle less than ``keepalive_s``, and never once the vendor has closed it;
- the reply body never exceeds ``max_reply_bytes``, announced, chunked or compressed
  (gzip and deflate are inflated with a cap, so a small compressed bomb cannot grow);
- failures say what is known: :class:`ConnectError` (nothing was sent),
  :class:`DisconnectedError` (the connection broke before a reply: it may have been
  processed), :class:`MalformedReplyError` (not an HTTP reply head), :class:`BodyError`
  (the reply was cut short, or its framing or encoding was wrong), :class:`ReplyTooLargeError`;
  the total timeout is ``TimeoutError``, the connect timeout :class:`ConnectTimeoutError`;
- a connection in any other state (cancelled mid-exchange, an unexpected byte while idle) is
  closed, never reused.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import re
import ssl
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httptools

KEEPALIVE_S = 15.0
"""An idle connection older than this is closed instead of reused (aiohttp's default)."""
_WRITE_SLICE_BYTES = 256 * 1024
ONE_WRITE_BYTES = 256 * 1024
"""A request up to this size (head and body) is sent in one write: one segment for the vendor."""
_MAX_HEAD_BYTES = 64 * 1024
"""A reply whose status line and headers (interim replies included) run longer is refused:
llhttp sets no limit of its own, and httptools joins a header's pieces as they arrive."""
_MAX_INTERIM = 8
"""1xx replies accepted before the final one."""
# Headers the client writes itself: a configured header of the same name would make two, and
# two framing headers let the vendor read a different request than the one sent.
_OWN_HEADERS = frozenset(
    ("host", "content-length", "transfer-encoding", "connection", "content-type", "user-agent",
     "accept-encoding")
)  # fmt: skip


class HTTPError(Exception):
    """The exchange failed."""


class ConnectError(HTTPError):
    """No connection could be made: nothing was sent."""


class ConnectTimeoutError(ConnectError):
    """The connection did not complete within its own timeout: nothing was sent."""


class DisconnectedError(HTTPError):
    """The connection broke before the reply's head arrived: the request may have been
    received and processed."""


class MalformedReplyError(HTTPError):
    """What came back is not an HTTP/1.x reply head."""


class BodyError(HTTPError):
    """The reply started but its body was cut short, or its framing or encoding was wrong."""


class ReplyTooLargeError(HTTPError):
    def __init__(self, status: int) -> None:
        super().__init__(f"reply larger than allowed (HTTP {status})")
        self.status = status


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    retry_after: str | None


@dataclass(frozen=True, slots=True)
class _Origin:
    host: str
    port: int
    tls: bool


@functools.lru_cache(maxsize=1024)
def _request_head(
    url: str, headers: tuple[tuple[str, str], ...], content_type: str, user_agent: str
) -> tuple[_Origin, bytes]:
    """Where ``url`` is, and the request head up to its Content-Length (one per endpoint and
    configured vendor: the urls and headers come from the configuration)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) url: {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    host = parts.hostname
    authority = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        authority = f"{authority}:{port}"
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    lines = [f"POST {target} HTTP/1.1", f"Host: {authority}", "Accept-Encoding: gzip, deflate"]
    for name, value in (("Content-Type", content_type), ("User-Agent", user_agent), *headers):
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            # The value is not shown: it may be a credential.
            raise ValueError(f"request header {name[:40]!r} is not valid in HTTP/1.1")
        lines.append(f"{name}: {value}")
    if any(name.lower() in _OWN_HEADERS for name, _ in headers):
        raise ValueError("a request header names one the client writes itself")
    if not _TARGET.fullmatch(target):
        raise ValueError("the url's path is not valid in an HTTP/1.1 request line")
    text = "\r\n".join(lines) + "\r\n"
    return _Origin(host, port, tls), text.encode("latin-1")


# RFC 9110's token (header names), field value (no CR, LF or NUL; latin-1) and a request
# target without spaces or controls.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(r"[\x21-\x7e]+")


def _inflater(encoding: bytes, first: bytes) -> zlib._Decompress:
    """A decompressor for ``encoding``, gzip or deflate. "deflate" is meant to be the zlib
    format, but some servers send raw deflate (as aiohttp does, both are read): a zlib stream
    opens with a header whose first byte names the method (8) and whose first two bytes are a
    multiple of 31."""
    if encoding != b"deflate":
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    zlib_header = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
    return zlib.decompressobj(wbits=zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)


class _Connection(asyncio.Protocol):
    """One connection and its llhttp parser; one exchange at a time."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: _Origin,
        on_lost: Callable[[_Connection], None],
    ) -> None:
        self._loop = loop
        self.origin = origin
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Reply] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused = False
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._reset(0)

    def _reset(self, cap: int) -> None:
        self._cap = cap
        self._status = 0
        self._headers_done = False
        self._delimited = False  # Content-Length or chunked: the end is not the connection's
        self._retry_after: str | None = None
        self._encoding = b""
        self._inflate: zlib._Decompress | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._failure: HTTPError | None = None
        self._head_bytes = 0  # of the headers read (interim replies' included)
        self._fed_in_head = 0  # bytes fed while the head was not complete
        self._interim = 0
        self._deflate_start = b""

    # --- the exchange ----------------------------------------------------------------------

    async def exchange(
        self, head: bytes, body: Sequence[bytes | memoryview], size: int, cap: int
    ) -> Reply:
        """Send ``head`` and ``body`` (``size`` bytes) and wait for the reply."""
        transport = self._transport
        if transport is None or self.closed:
            raise DisconnectedError("the connection is closed")
        self._reset(cap)
        self.reusable = False
        waiter: asyncio.Future[Reply] = self._loop.create_future()
        self._waiter = waiter
        try:
            if size <= ONE_WRITE_BYTES:
                # One write, so one segment for a small request: the vendor wakes up once.
                transport.write(b"".join((head, *body)))
                sent_all = True
            else:
                sent_all = await self._write_slices(transport, head, body, waiter)
            reply = await waiter
            if not sent_all:
                # Answered before the whole body went (a 413, say): the vendor still expects
                # the rest, and would read the next request as its end.
                self.reusable = False
            return reply
        finally:
            # Cancelled or timed out while writing: the reply is nobody's now (the connection
            # is closed by the client), and a failure set on it later must not be logged as
            # never retrieved.
            if not waiter.done():
                waiter.cancel()

    async def _write_slices(
        self,
        transport: asyncio.Transport,
        head: bytes,
        body: Sequence[bytes | memoryview],
        waiter: asyncio.Future[Reply],
    ) -> bool:
        """Whether all of the body was written."""
        transport.write(head)
        for chunk in body:
            view = memoryview(chunk).cast("B")
            for start in range(0, len(view), _WRITE_SLICE_BYTES):
                if waiter.done() or self.closed:
                    return False  # answered (or broken) before the body was all sent
                # In slices, waiting for the socket between them: asyncio copies what the
                # socket does not take into its own buffer, a second copy otherwise.
                transport.write(view[start : start + _WRITE_SLICE_BYTES])
                if self._paused:
                    self._drain = self._loop.create_future()
                    await self._drain
        return True

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_lost(self)
        self._wake_drain()
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._delimited and self._failure is None and exc is None:
            self._complete()  # a body delimited by the end of the connection (not by a reset)
            return
        if self._headers_done:
            self._fail(BodyError("the reply body was cut short"))
        else:
            self._fail(DisconnectedError("the connection closed before a reply"))

    def eof_received(self) -> bool:
        return False  # close; connection_lost judges what was received

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        drain = self._drain
        if drain is not None:
            self._drain = None
            if not drain.done():
                drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.abort()  # bytes nobody asked for: the connection's state is unknown
            return
        if not self._headers_done:
            self._fed_in_head += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(MalformedReplyError("the vendor switched protocols"))
        except httptools.HttpParserError as exc:
            if self._failure is None:
                # llhttp's reason (a fixed text such as "Invalid character in chunk size"),
                # never the bytes themselves: they are the vendor's and go nowhere.
                cause = str(exc) or type(exc).__name__
                if self._headers_done:
                    self._fail(BodyError(f"the reply body is malformed ({cause})"))
                else:
                    self._fail(MalformedReplyError(f"not an HTTP/1.x reply ({cause})"))
        # Headers still not done: everything fed so far was head (interim replies included).
        head_too_long = not self._headers_done and self._fed_in_head > _MAX_HEAD_BYTES
        if self._failure is None and head_too_long:
            self._failure = MalformedReplyError("the reply's head is too long")
        if self._failure is not None:
            self._fail(self._failure)

    # --- llhttp callbacks (never raise: a failure is recorded and the parser stopped) -----

    def on_message_begin(self) -> None:
        if self._waiter is None:  # a reply after the reply: the connection is out of step
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._headers_done:
            return  # a chunked body's trailer: the headers have been read
        self._head_bytes += len(name) + len(value)
        key = name.lower()
        if key == b"retry-after":
            self._retry_after = value.decode("latin-1").strip()
        elif key == b"content-encoding":
            self._encoding = value.strip().lower()
        elif key == b"content-length":
            self._delimited = True
            length = value.strip()  # llhttp has checked the digits; 20 of them are > 2**64
            status = self._parser.get_status_code()
            has_body = status >= 200 and status not in (204, 304)
            if has_body and length.isdigit() and (len(length) > 19 or int(length) > self._cap):
                self._failure = ReplyTooLargeError(status)
        elif key == b"transfer-encoding":
            self._delimited = True

    def on_headers_complete(self) -> None:
        if self._waiter is None:  # a reply after the reply: the connection is out of step
            self.abort()
            return
        status = self._parser.get_status_code()
        self._status = status
        if self._head_bytes > _MAX_HEAD_BYTES:
            self._failure = MalformedReplyError("the reply's head is too long")
            return
        if 100 <= status < 200:
            self._interim += 1  # an interim reply: its headers say nothing of the final one
            if self._interim > _MAX_INTERIM:
                self._failure = MalformedReplyError("too many interim (1xx) replies")
            return
        self._headers_done = True
        if self._encoding not in (b"", b"identity", b"gzip", b"x-gzip", b"deflate"):
            self._failure = BodyError("the reply has an unsupported Content-Encoding")

    def on_body(self, body: bytes) -> None:
        if self._failure is not None or not body:
            return
        if self._encoding and self._encoding != b"identity":
            if self._inflate is None:
                if self._encoding == b"deflate" and len(self._deflate_start + body) < 2:
                    self._deflate_start += body  # two bytes tell zlib from raw deflate
                    return
                body, self._deflate_start = self._deflate_start + body, b""
                self._inflate = _inflater(self._encoding, body)
            room = self._cap - self._size + 1
            try:
                body = self._inflate.decompress(body, room)
            except zlib.error:
                self._failure = BodyError("the compressed reply is corrupt")
                return
        self._size += len(body)
        if self._size > self._cap:
            self._failure = ReplyTooLargeError(self._status)
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:
            self._encoding, self._delimited, self._retry_after = b"", False, None
            return
        if self._failure is None:
            self.reusable = self._parser.should_keep_alive()
            self._complete()

    def _complete(self) -> None:
        if self._deflate_start:  # a one-byte deflate body: no valid stream is that short
            self._failure = BodyError("the compressed reply is cut short")
            self._fail(self._failure)
            return
        inflate = self._inflate  # None also when the compressed body was empty
        if inflate is not None and not inflate.eof:
            self._failure = BodyError("the compressed reply is cut short")
            self._fail(self._failure)
            return
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            waiter.set_result(Reply(self._status, body, self._retry_after))
        self._chunks = []

    def _fail(self, failure: HTTPError) -> None:
        self.reusable = False
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)
        self.abort()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self.closed = True
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()


class Client:
    """Pooled HTTP/1.1 connections per vendor origin; no limit of its own (each vendor's
    concurrency is capped, and shed, upstream)."""

    def __init__(
        self,
        *,
        user_agent: str,
        keepalive_s: float = KEEPALIVE_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._user_agent = user_agent
        self._keepalive_s = keepalive_s
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, collections.deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        self.closed = False

    @property
    def connections(self) -> int:
        """Connections open now, idle or in use."""
        return len(self._open)

    async def post(
        self,
        url: str,
        body: Sequence[bytes | memoryview],
        *,
        content_type: str,
        headers: Mapping[str, str],
        timeout_s: float,
        connect_timeout_s: float,
        max_reply_bytes: int,
    ) -> Reply:
        """POST ``body`` (its pieces, sent in order) and return the reply, within
        ``timeout_s`` (``TimeoutError`` past it); connecting gets ``connect_timeout_s``."""
        if self.closed:
            raise ConnectError("the client is closed")
        origin, head = _request_head(url, tuple(headers.items()), content_type, self._user_agent)
        length = 0
        for chunk in body:
            length += len(chunk) if isinstance(chunk, bytes) else chunk.nbytes
        head += b"Content-Length: %d\r\n\r\n" % length
        async with asyncio.timeout(timeout_s):
            connection = self._take(origin)
            if connection is None:
                connection = await self._connect(origin, connect_timeout_s)
            try:
                reply = await connection.exchange(head, body, length, max_reply_bytes)
            except BaseException:
                self._discard(connection)
                raise
        if connection.reusable and not connection.closed and not self.closed:
            connection.idle_since = now = time.monotonic()
            idle = self._idle.setdefault(origin, collections.deque())
            idle.append(connection)
            self._expire(idle, now)
        else:
            connection.close()
            self._open.discard(connection)
        return reply

    def _take(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        self._expire(idle, time.monotonic())
        # The most recently used: the least likely to have been closed by the vendor.
        return idle.pop() if idle else None

    def _expire(self, idle: collections.deque[_Connection], now: float) -> None:
        """Close the connections idle for ``keepalive_s`` or more (the oldest are first)."""
        while idle and idle[0].idle_since <= now - self._keepalive_s:
            self._discard(idle.popleft())

    def _forget(self, connection: _Connection) -> None:
        """A connection closed (by either side): out of the pool."""
        self._open.discard(connection)
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)

    async def _connect(self, origin: _Origin, timeout_s: float) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.tls:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        try:
            async with asyncio.timeout(timeout_s) as connect_timeout:
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, origin, self._forget),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                    # Several addresses (IPv6 and IPv4): race them as aiohttp did, 0.25 s apart.
                    happy_eyeballs_delay=0.25,
                )
        except TimeoutError:
            if connect_timeout.expired():
                raise ConnectTimeoutError(f"no connection within {timeout_s:g} s") from None
            raise
        except OSError as exc:  # refused, unreachable, name not found, TLS handshake
            raise ConnectError(type(exc).__name__) from None
        self._open.add(connection)
        return connection

    def _discard(self, connection: _Connection) -> None:
        connection.abort()
        self._open.discard(connection)

    async def close(self) -> None:
        """Close every connection, idle or in use."""
        self.closed = True
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports' close callbacks run


__all__ = [
    "KEEPALIVE_S",
    "ONE_WRITE_BYTES",
    "BodyError",
    "Client",
    "ConnectError",
    "ConnectTimeoutError",
    "DisconnectedError",
    "HTTPError",
    "MalformedReplyError",
    "Reply",
    "ReplyTooLargeError",
]
