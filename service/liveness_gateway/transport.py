"""The one place that talks HTTP to vendors: sends a VendorRequest, returns a VendorReply.

:class:`Transport` is the seam below :class:`~liveness_gateway.upstream.Upstream`:
:class:`VendorTransport` speaks HTTP/1.1 (:mod:`~liveness_gateway.http1`);
:class:`InMemoryTransport` hands each request to a Python function, so that retries,
breakers, shedding and deadlines are tested without sockets (as httpx's ``MockTransport``
does). Transport failures become :class:`~liveness_gateway.errors.GatewayError` here, the
same way for both; what the reply *says* is interpreted by the vendor modules.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from liveness_gateway import errors, http1
from liveness_gateway.vendors.base import VendorReply, VendorRequest

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 3.0
_USER_AGENT = "liveness-gateway"
# Bodies up to this size are one bytes object, which the client sends with the request head
# in one write, like a plain POST (see build_body).
_ONE_PIECE_BYTES = http1.ONE_WRITE_BYTES
# The boundary of every one-piece body, unless a part contains it (build_body checks).
_PROCESS_BOUNDARY = secrets.token_hex(16)
_PROCESS_CONTENT_TYPE = f"multipart/form-data; boundary={_PROCESS_BOUNDARY}"


def new_client() -> http1.Client:
    """The process' one vendor client: pooled keep-alive connections, no limit of its own
    (a shared cap would queue one vendor's calls behind the other's hung ones; each vendor's
    concurrency is capped, and shed, upstream)."""
    return http1.Client(user_agent=_USER_AGENT)


@dataclass(frozen=True, slots=True)
class MultipartBody:
    """A multipart/form-data body as its pieces, sent in order. Up to ``_ONE_PIECE_BYTES``
    the whole body is one piece; above it the caller's liveness data is a piece of its own,
    never copied."""

    chunks: Sequence[bytes | memoryview]
    boundary: str

    @property
    def content_type(self) -> str:
        return _content_type(self.boundary)

    @property
    def size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    def as_bytes(self) -> bytes:
        return b"".join(self.chunks)


def _content_type(boundary: str) -> str:
    if boundary == _PROCESS_BOUNDARY:
        return _PROCESS_CONTENT_TYPE
    return f"multipart/form-data; boundary={boundary}"


def _quote(value: str) -> str:
    """A Content-Disposition parameter value, quoted as aiohttp's FormData does."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def build_body(request: VendorRequest, boundary: str | None = None) -> MultipartBody:
    """The request's parts as one multipart/form-data body.

    Up to ``_ONE_PIECE_BYTES`` of data, the body is one ``bytes`` object (one copy of the
    data), written with the request head in one ``send``: written as pieces,
    each went out as its own TCP segment and the vendor's server woke up for each. Such a
    body uses the process' boundary, checked: if any part contains it, a fresh random one is
    drawn. A new boundary per request was a new Content-Type header per request, and servers
    that cache parsed headers (aiohttp's parses each new one with the email package, ~0.2 ms)
    paid that on every call. Larger bodies are written as slices around the caller's data,
    never copied (the client writes them in slices), with a fresh random boundary (scanning
    them would cost more than it saves).
    """
    # The parts as the text cache sees them (names, text values, filenames) and the bytes
    # values that go between the rendered texts: one pass, no generators (the hot path).
    parts: list[tuple[str, str | None, str | None]] = []
    values: list[bytes | memoryview] = []
    size = 0
    for part in request.parts:
        value = part.value
        if isinstance(value, str):
            parts.append((part.name, value, part.filename))
        else:
            parts.append((part.name, None, part.filename))
            values.append(value)
            size += len(value)
    shape = tuple(parts)
    if boundary is not None:
        return MultipartBody(_chunks(_render(shape, boundary), values), boundary)
    if size > _ONE_PIECE_BYTES:
        boundary = secrets.token_hex(16)
        return MultipartBody(_chunks(_render(shape, boundary), values), boundary)
    boundary = _PROCESS_BOUNDARY
    texts = _texts(shape)
    while True:
        whole = b"".join(_chunks(texts, values))
        # Each part opens with a delimiter and one closes the body: any other occurrence
        # came from a part's value, and a parser would cut the form there.
        if whole.count(f"--{boundary}".encode()) == len(shape) + 1:
            return MultipartBody((whole,), boundary)
        boundary = secrets.token_hex(16)
        texts = _render(shape, boundary)


Shape = tuple[tuple[str, str | None, str | None], ...]
"""Each part's name, its text value (None for bytes) and its filename."""


def _chunks(texts: tuple[bytes, ...], values: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """The rendered texts with each bytes value (not copied) between them."""
    chunks: list[bytes | memoryview] = [texts[0]]
    for index, value in enumerate(values, 1):
        chunks.append(value)
        chunks.append(texts[index])
    return chunks


def _render(shape: Shape, boundary: str) -> tuple[bytes, ...]:
    """The form's text: one piece before each bytes part's value and one after the last."""
    dash = f"--{boundary}\r\n"
    pieces: list[bytes] = []
    text: list[str] = []
    for name, value, filename in shape:
        disposition = f'Content-Disposition: form-data; name="{_quote(name)}"'
        if filename is not None:
            text.append(
                f"{dash}Content-Type: application/octet-stream\r\n{disposition}; "
                f'filename="{_quote(filename)}"\r\n\r\n'
            )
        else:
            text.append(f"{dash}Content-Type: text/plain; charset=utf-8\r\n{disposition}\r\n\r\n")
        if value is not None:
            text.append(value)
            text.append("\r\n")
            continue
        pieces.append("".join(text).encode("utf-8"))
        text.clear()
        text.append("\r\n")
    text.append(f"--{boundary}--\r\n")
    pieces.append("".join(text).encode("utf-8"))
    return tuple(pieces)


@functools.lru_cache(maxsize=256)
def _texts(shape: Shape) -> tuple[bytes, ...]:
    """The form's text with the process' boundary. It depends only on the parts' names, text
    values and the boundary, so it is rendered once per form, not on every call: one form per
    endpoint and source kind, and one per url or id a caller names (bounded: a miss only
    renders, as every call did before)."""
    return _render(shape, _PROCESS_BOUNDARY)


class Transport(Protocol):
    """Sends one vendor request and returns the reply, or raises a GatewayError."""

    async def send(
        self, request: VendorRequest, *, timeout_s: float, caller_bound: bool
    ) -> VendorReply:
        """``caller_bound`` says the timeout is the caller's deadline, not the vendor's."""
        ...


def _timed_out(request: VendorRequest, caller_bound: bool) -> errors.GatewayError:
    if caller_bound:
        return errors.deadline_exceeded(request.vendor)
    return errors.vendor_timeout(request.vendor)


def _too_large(request: VendorRequest, http_status: int) -> errors.GatewayError:
    return errors.bad_reply(
        request.vendor,
        f"the reply is larger than {request.max_reply_bytes} bytes",
        http_status=http_status,
    )


class VendorTransport:
    """Sends vendor requests over the process' pooled HTTP/1.1 connections
    (:mod:`~liveness_gateway.http1`), reading at most the endpoint's largest legitimate
    reply."""

    def __init__(self, client: http1.Client) -> None:
        self._client = client

    async def send(
        self, request: VendorRequest, *, timeout_s: float, caller_bound: bool
    ) -> VendorReply:
        """POST the request; ``caller_bound`` says the timeout is the caller's deadline."""
        body = build_body(request)
        try:
            # Connecting gets at most half the budget: a connection that never completes is
            # then told apart (nothing sent, safe to retry) from a vendor slow to answer.
            reply = await self._client.post(
                request.url,
                body.chunks,
                content_type=body.content_type,
                headers=request.headers,
                timeout_s=timeout_s,
                connect_timeout_s=min(_CONNECT_TIMEOUT_S, timeout_s / 2),
                max_reply_bytes=request.max_reply_bytes,
            )
        except http1.ConnectTimeoutError:
            log.info("vendor %s connect timed out", request.vendor)
            raise errors.unreachable(request.vendor, never_sent=True) from None
        except http1.ConnectError as exc:
            # The TCP (or TLS) connection was never made: nothing was sent.
            log.info("vendor %s connect failed: %s", request.vendor, exc)
            raise errors.unreachable(request.vendor, never_sent=True) from None
        except TimeoutError:
            raise _timed_out(request, caller_bound) from None
        except http1.ReplyTooLargeError as exc:
            raise _too_large(request, exc.status) from None
        except http1.BodyError as exc:
            # The client's own words (fixed texts, no vendor bytes): cut short, badly framed,
            # an unknown or corrupt encoding.
            raise errors.bad_reply(request.vendor, str(exc)) from None
        except (http1.HTTPError, OSError) as exc:
            log.info("vendor %s unreachable: %s", request.vendor, exc)
            raise errors.unreachable(request.vendor) from None
        return VendorReply(
            vendor=request.vendor,
            http_status=reply.status,
            body=reply.body,
            retry_after=reply.retry_after,
        )


Handler = Callable[[VendorRequest], Awaitable[VendorReply]]


class InMemoryTransport:
    """A :class:`Transport` that hands each request to ``handler`` instead of a socket.

    The handler returns a :class:`VendorReply` or raises ``ConnectionRefusedError`` (nothing
    was sent) or another ``ConnectionError`` (dropped after sending); it may sleep to be
    slow. Timeouts, the reply cap and failure mapping are those of :class:`VendorTransport`.
    ``sent`` lists every request, for tests to count.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.sent: list[VendorRequest] = []

    async def send(
        self, request: VendorRequest, *, timeout_s: float, caller_bound: bool
    ) -> VendorReply:
        self.sent.append(request)
        try:
            async with asyncio.timeout(timeout_s):
                reply = await self._handler(request)
        except TimeoutError:
            raise _timed_out(request, caller_bound) from None
        except ConnectionRefusedError:
            raise errors.unreachable(request.vendor, never_sent=True) from None
        except ConnectionError:
            raise errors.unreachable(request.vendor) from None
        if len(reply.body) > request.max_reply_bytes:
            raise _too_large(request, reply.http_status)
        return reply


__all__ = [
    "InMemoryTransport",
    "MultipartBody",
    "Transport",
    "VendorTransport",
    "build_body",
    "new_client",
]
