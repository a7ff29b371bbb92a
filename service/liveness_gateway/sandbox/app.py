"""The offline vendor: LinkFace's and AccuAuth's liveness endpoints as documented.

Same paths, multipart fields, credential checks, 5 MB limit, url downloads with a time
limit, ids stored by upload, error body shape, and the documented quirks (the score is a
JSON string; upload answers with ``image_id``). See :mod:`.vectors` for the test vectors.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import secrets
import socket
import uuid
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from liveness_gateway.config import ACCUAUTH, LINKFACE, MAX_LIVENESS_BYTES
from liveness_gateway.sandbox import vectors
from liveness_gateway.sandbox.vectors import Vector, VectorError
from liveness_gateway.vendors import ENDPOINTS, accuauth, linkface

_MAX_BODY_BYTES = 2 * MAX_LIVENESS_BYTES
"""What the sandbox reads of a request at all; beyond the 5 MB rule but bounded."""
_TRACEPARENTS_KEPT = 1000
_MAX_STORED_BYTES = 256 * 1024 * 1024
"""What the sandbox keeps of uploaded data (oldest dropped first), so it never grows unbounded."""
# A 1x1 PNG: what the sandbox sends as the face image.
_FACE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


# The HTTP status of each documented vendor status, as the pages' error tables give it.
# Written from the pages, not taken from the gateway: a wrong entry on either side shows up
# in the tests. A status no page lists gets 400.
PAGE_HTTP_STATUS: dict[str, int] = {
    "ENCODING_ERROR": 400,
    "DOWNLOAD_TIMEOUT": 400,
    "DOWNLOAD_ERROR": 400,
    "INVALID_ARGUMENT": 400,
    "WRONG_LIVENESS_DATA": 400,
    "NO_FACE_DETECTED": 400,
    "DETETION_FAILED": 400,
    "UNAUTHORIZED": 401,
    "KEY_EXPIRED": 401,
    "RATE_LIMIT_EXCEEDED": 403,
    "NO_PERMISSION": 403,
    "OUT_OF_QUOTA": 403,
    "NOT_FOUND": 404,
    "INTERNAL_ERROR": 500,
}

DETECT_FILE_PARTS = ("any", "liveness_data_file", "file")
IMAGE_ENCODINGS = ("standard", "urlsafe", "unpadded", "wrapped", "data_uri")

# An image that, with the rest of a gRPC response, is over 6 MiB (the message limit).
_OVERSIZED_IMAGE = _FACE_PNG + bytes(6 * 1024 * 1024)


@dataclass(frozen=True)
class Credentials:
    api_id: str
    api_secret: str = field(repr=False)

    @staticmethod
    def generate() -> Credentials:
        return Credentials("sandbox-" + secrets.token_hex(4), secrets.token_urlsafe(24))

    @property
    def pair(self) -> tuple[str, str]:
        return self.api_id, self.api_secret


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


@dataclass(frozen=True)
class SandboxConfig:
    """The sandbox's accounts, and which reading of the pages it follows where they differ."""

    linkface: Credentials
    accuauth: Credentials
    download_timeout_s: float = 5.0
    detect_file_part: str = "any"
    """Detect's data part: the table's ``liveness_data_file``, the samples' ``file``, or any."""
    extra_bools: bool = False
    """Send ``face_quality_score`` and ``live_proba`` as bools, as the AntiHack table types
    them (the sample sends floats)."""
    image_encoding: str = "standard"
    """How ``image_base64`` is written: standard, urlsafe, unpadded, wrapped (MIME lines of
    76) or data_uri (``data:image/png;base64,...``)."""

    latency_ms: int = 0
    """Service time of every vendor request (after its body is read), on top of any vector's
    ``delay_ms``: a slow vendor without special payloads."""
    capacity: int = 0
    """Requests served at once (0: any number). Beyond it requests wait, first come first
    served, for a free slot: a vendor with ``capacity`` workers, whose latency grows with its
    own in-flight count past its capacity (``latency_ms`` each, plus the wait)."""

    download_allow: tuple[Network, ...] = LOOPBACK
    """Addresses a url source may be downloaded from, checked on every address a connection
    is made to (after DNS, so a name cannot point elsewhere). Loopback only by default: the
    sandbox is a test double and must not reach into the network it runs in."""

    def __post_init__(self) -> None:
        if self.detect_file_part not in DETECT_FILE_PARTS:
            raise ValueError(f"detect_file_part must be one of {DETECT_FILE_PARTS}")
        if self.image_encoding not in IMAGE_ENCODINGS:
            raise ValueError(f"image_encoding must be one of {IMAGE_ENCODINGS}")
        if self.latency_ms < 0 or self.capacity < 0:
            raise ValueError("latency_ms and capacity must be 0 or more")

    @staticmethod
    def generate(**readings: Any) -> SandboxConfig:
        """Fresh random credentials for both vendors."""
        return SandboxConfig(Credentials.generate(), Credentials.generate(), **readings)

    def credentials(self, vendor: str) -> Credentials:
        return {LINKFACE: self.linkface, ACCUAUTH: self.accuauth}[vendor]


class _ReplyError(Exception):
    """Raised inside a handler to send an error reply at once."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__()
        self.response = response


_LATENCIES_KEPT = 100_000


class SandboxState:
    """Stored uploads and per-endpoint request counts (tests assert on them)."""

    def __init__(self, capacity: int = 0) -> None:
        self.slots = asyncio.Semaphore(capacity) if capacity else None
        self.served = 0
        """Requests holding a slot now (with a capacity)."""
        self.latencies_s: deque[float] = deque(maxlen=_LATENCIES_KEPT)
        """With a latency or capacity: each request's service time plus its wait."""
        self.requests: Counter[str] = Counter()
        self.stored: OrderedDict[str, bytes] = OrderedDict()
        self.stored_bytes = 0
        self.in_flight = 0
        self.traceparents: deque[str] = deque(maxlen=_TRACEPARENTS_KEPT)
        """The ``traceparent`` header of the latest vendor requests, oldest first."""

    def store(self, data: bytes) -> str:
        data_id = "LD" + hashlib.sha256(data).hexdigest()[:30]
        if data_id in self.stored:
            self.stored.move_to_end(data_id)
            return data_id
        self.stored[data_id] = data
        self.stored_bytes += len(data)
        while self.stored_bytes > _MAX_STORED_BYTES:
            _, dropped = self.stored.popitem(last=False)
            self.stored_bytes -= len(dropped)
        return data_id

    def total(self) -> int:
        return sum(self.requests.values())


STATE = web.AppKey("state", SandboxState)
CONFIG = web.AppKey("config", SandboxConfig)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def create_app(config: SandboxConfig) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app[STATE] = SandboxState(config.capacity)
    app[CONFIG] = config
    handlers = {
        linkface.UPLOAD.name: _upload,
        linkface.DETECT.name: _detect,
        accuauth.ANTI_HACK.name: _anti_hack,
    }
    for endpoint in ENDPOINTS:
        app.router.add_post(endpoint.path, handlers[endpoint.name])
    app.router.add_get("/_sandbox/stats", _stats)
    app.cleanup_ctx.append(_download_session)
    app.middlewares.append(_vendor_errors)
    return app


def _guarded_socket(allowed: tuple[Network, ...]) -> Any:
    """aiohttp's socket factory: a socket only for an allowed address, else OSError."""

    def create(addr_info: Any) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        address = ipaddress.ip_address(sockaddr[0])
        if not any(address in network for network in allowed):
            raise OSError("address not allowed for downloads")
        return socket.socket(family, kind, proto)

    return create


async def _download_session(app: web.Application) -> Any:
    connector = aiohttp.TCPConnector(socket_factory=_guarded_socket(app[CONFIG].download_allow))
    async with aiohttp.ClientSession(connector=connector) as session:
        app[SESSION] = session
        yield


@web.middleware
async def _vendor_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[STATE]
    if request.path != "/_sandbox/stats":
        state.requests[request.path] += 1
        traceparent = request.headers.get("traceparent")
        if traceparent is not None:
            state.traceparents.append(traceparent)
    state.in_flight += 1
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except _ReplyError as reply:
        return reply.response
    except web.HTTPNotFound:
        return _error(404, "NOT_FOUND", f"no such path: {request.path}")
    except web.HTTPMethodNotAllowed:
        return _error(404, "NOT_FOUND", f"no such path: {request.method} {request.path}")
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "INVALID_ARGUMENT", "request body too large")
    finally:
        state.in_flight -= 1


def _request_id() -> str:
    return "TID" + uuid.uuid4().hex


def _error(http: int, status: str, reason: str) -> web.Response:
    body = {"status": status, "reason": reason, "request_id": _request_id()}
    if status == "NO_FACE_DETECTED":  # "details in the field image", says the page
        body["image"] = "no face in any frame of the liveness data"
    return web.json_response(body, status=http)


def _fail(http: int, status: str, reason: str) -> _ReplyError:
    return _ReplyError(_error(http, status, reason))


# --- request reading -----------------------------------------------------------------------


@dataclass
class _Form:
    texts: dict[str, bytes]
    files: dict[str, bytes]

    def text(self, name: str) -> str | None:
        raw = self.texts.get(name)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(400, "ENCODING_ERROR", f"parameter {name!r} is not UTF-8") from None


async def _read_form(request: web.Request) -> _Form:
    if request.content_type != "multipart/form-data":
        raise _fail(400, "INVALID_ARGUMENT", "request must be multipart/form-data")
    texts: dict[str, bytes] = {}
    files: dict[str, bytes] = {}
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                raise _fail(400, "INVALID_ARGUMENT", "nested multipart is not supported")
            data = bytes(await part.read(decode=False))
            total += len(data)
            if total > _MAX_BODY_BYTES:
                raise _fail(413, "INVALID_ARGUMENT", "request body too large")
            name = part.name or ""
            (files if part.filename is not None else texts)[name] = data
    except (ValueError, AssertionError, aiohttp.ClientPayloadError):
        raise _fail(400, "INVALID_ARGUMENT", "malformed multipart body") from None
    # The LinkFace samples pass text parameters in the query string too.
    for key, value in request.query.items():
        texts.setdefault(key, value.encode("utf-8"))
    return _Form(texts, files)


def _check_linkface_auth(request: web.Request, form: _Form) -> None:
    creds = request.app[CONFIG].linkface
    given = (form.text("api_id"), form.text("api_secret"))
    if not _same(given, creds):
        raise _fail(401, "UNAUTHORIZED", "invalid api_id or api_secret")


def _check_accuauth_auth(request: web.Request) -> None:
    creds = request.app[CONFIG].accuauth
    given = (request.headers.get("X-DF-API-ID"), request.headers.get("X-DF-API-SECRET"))
    if not _same(given, creds):
        raise _fail(401, "UNAUTHORIZED", "invalid X-DF-API-ID or X-DF-API-SECRET")


def _same(given: tuple[str | None, str | None], creds: Credentials) -> bool:
    api_id, api_secret = given
    return (
        api_id is not None
        and api_secret is not None
        and secrets.compare_digest(api_id.encode(), creds.api_id.encode())
        and secrets.compare_digest(api_secret.encode(), creds.api_secret.encode())
    )


def _check_size(data: bytes, name: str) -> bytes:
    if not data:
        raise _fail(400, "INVALID_ARGUMENT", f"{name!r} is empty")
    if len(data) > MAX_LIVENESS_BYTES:
        raise _fail(400, "INVALID_ARGUMENT", f"{name!r} is larger than 5 MB")
    return data


async def _download(request: web.Request, url: str) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise _fail(400, "DOWNLOAD_ERROR", "only http and https urls are supported")
    config = request.app[CONFIG]
    session = request.app[SESSION]
    # One message for every failure (refused address, no answer, an HTTP error, a redirect,
    # too large): different ones would tell a caller which hosts and ports answer.
    failed = _fail(400, "DOWNLOAD_ERROR", "download failed")
    try:
        async with asyncio.timeout(config.download_timeout_s):
            async with session.get(url, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise failed
                data = await resp.content.read(MAX_LIVENESS_BYTES + 1)
                while len(data) <= MAX_LIVENESS_BYTES and not resp.content.at_eof():
                    more = await resp.content.read(MAX_LIVENESS_BYTES + 1 - len(data))
                    if not more:
                        break
                    data += more
    except TimeoutError:
        raise _fail(400, "DOWNLOAD_TIMEOUT", "download took longer than allowed") from None
    except (aiohttp.ClientError, OSError, ValueError):
        raise failed from None
    if not data or len(data) > MAX_LIVENESS_BYTES:
        raise failed
    return data


def _one_of(form: _Form, files: tuple[str, ...], texts: tuple[str, ...]) -> tuple[str, Any]:
    found: list[tuple[str, Any]] = [(n, form.files[n]) for n in files if n in form.files]
    found += [(n, form.text(n)) for n in texts if n in form.texts]
    if len(found) != 1:
        names = ", ".join(f"'{n}'" for n in (*files, *texts))
        raise _fail(400, "INVALID_ARGUMENT", f"must specify exactly one of {names} argument")
    return found[0]


def _vector(data: bytes) -> Vector:
    try:
        return vectors.parse(data) or Vector()
    except VectorError as exc:
        raise _fail(400, "INVALID_ARGUMENT", str(exc)) from None


# --- replies -------------------------------------------------------------------------------


async def _serve(request: web.Request) -> None:
    """The configured service time, in one of ``capacity`` slots (SandboxConfig)."""
    config, state = request.app[CONFIG], request.app[STATE]
    if not config.latency_ms and state.slots is None:
        return
    started = asyncio.get_running_loop().time()
    if state.slots is None:
        await asyncio.sleep(config.latency_ms / 1000)
    else:
        async with state.slots:
            state.served += 1
            try:
                await asyncio.sleep(config.latency_ms / 1000)
            finally:
                state.served -= 1
    state.latencies_s.append(asyncio.get_running_loop().time() - started)


async def _apply(request: web.Request, vector: Vector) -> None:
    """Everything a vector does before the normal reply: delay, drop, errors, odd bodies."""
    await _serve(request)
    if vector.delay_ms:
        await asyncio.sleep(vector.delay_ms / 1000)
    if vector.drop:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise _ReplyError(web.Response(status=500))  # never written: the connection is gone
    headers = {"Retry-After": vector.retry_after} if vector.retry_after else {}
    if vector.status is not None:
        http = vector.http or PAGE_HTTP_STATUS.get(vector.status, 400)
        response = _error(http, vector.status, f"sandbox vector asked for {vector.status}")
        response.headers.update(headers)
        raise _ReplyError(response)
    if vector.http is not None and vector.http != 200:
        raise _ReplyError(
            _bare(vector.http, vector.body if vector.body != "json" else None, headers)
        )
    if vector.body != "json":
        raise _ReplyError(_bare(200, vector.body, headers))


def _bare(http: int, shape: str | None, headers: dict[str, str]) -> web.StreamResponse:
    """A reply without a vendor status: a load balancer's page, nothing, or broken JSON."""
    if shape is None:
        shape = "html" if http >= 500 else "empty"
    match shape:
        case "html":
            text = f"<html><head><title>{http}</title></head><body><h1>{http}</h1></body></html>"
            return web.Response(status=http, text=text, content_type="text/html", headers=headers)
        case "empty":
            return web.Response(status=http, headers=headers)
        case "garbage":
            return web.Response(status=http, text="not json {", content_type="text/plain")
        case "not_object":
            return web.json_response(["OK"], status=http)
        case "huge":
            return _Huge(status=http)
        case "nested":
            nested = "[" * 10_000 + "]" * 10_000
            return web.Response(status=http, text=nested, content_type="application/json")
        case _:  # truncated: promise more than is sent, then close
            return _Truncated(status=http)


_HUGE_BYTES = 32 * 1024 * 1024


class _Huge(web.StreamResponse):
    """A 32 MiB JSON-looking body, streamed chunked (no Content-Length to trust)."""

    async def prepare(self, request: web.BaseRequest) -> Any:
        self.content_type = "application/json"
        self.enable_chunked_encoding()
        writer = await super().prepare(request)
        chunk = b" " * (1024 * 1024)
        await self.write(b'{"status": "OK", "pad": "')
        for _ in range(_HUGE_BYTES // len(chunk)):
            await self.write(chunk)
        await self.write(b'"}')
        return writer


class _Truncated(web.StreamResponse):
    async def prepare(self, request: web.BaseRequest) -> Any:
        self.content_length = 1000
        self.content_type = "application/json"
        writer = await super().prepare(request)
        await self.write(b'{"status": "OK", "sco')
        if request.transport is not None:
            request.transport.close()
        return writer


def _score_value(score: float, vector: Vector) -> str | float:
    if vector.score_raw is not None:  # anything at all, for testing the gateway's checks
        return vector.score_raw
    return score if vector.score_format == "number" else f"{score:.6f}"


def _score_for(data: bytes, vector: Vector) -> float:
    return vector.score if vector.score is not None else vectors.default_score(data)


async def _upload(request: web.Request) -> web.StreamResponse:
    form = await _read_form(request)
    _check_linkface_auth(request, form)
    name, value = _one_of(form, ("file",), ("url",))
    data = _check_size(value, name) if name == "file" else await _download(request, value)
    vector = _vector(data)
    await _apply(request, vector)
    data_id = request.app[STATE].store(data)
    # The documented sample answers with image_id, the table says liveness_data_id.
    key = vector.id_key or "image_id"
    return web.json_response({"request_id": _request_id(), "status": "OK", key: data_id})


async def _detect(request: web.Request) -> web.StreamResponse:
    form = await _read_form(request)
    _check_linkface_auth(request, form)
    # "file" is what the cURL sample names the part; the table says liveness_data_file.
    reading = request.app[CONFIG].detect_file_part
    file_parts = ("liveness_data_file", "file") if reading == "any" else (reading,)
    name, value = _one_of(form, file_parts, ("liveness_data_url", "liveness_data_id"))
    state = request.app[STATE]
    if name == "liveness_data_id":
        data = value.encode("utf-8") if value.startswith("SANDBOX:") else state.stored.get(value)
        if data is None:
            raise _fail(400, "INVALID_ARGUMENT", "unknown liveness_data_id")
        data_id = value
    else:
        data = (
            await _download(request, value)
            if name == "liveness_data_url"
            else _check_size(value, name)
        )
        data_id = ""
    vector = _vector(data)
    await _apply(request, vector)
    data_id = data_id or state.store(data)
    key = vector.id_key or "liveness_data_id"
    return web.json_response(
        {
            "request_id": _request_id(),
            "status": "OK",
            "score": _score_value(_score_for(data, vector), vector),
            key: data_id,
        }
    )


async def _anti_hack(request: web.Request) -> web.StreamResponse:
    _check_accuauth_auth(request)
    form = await _read_form(request)
    name, value = _one_of(form, ("liveness_data_file",), ("image_id", "liveness_data_url"))
    if name == "image_id":
        if not value:
            raise _fail(400, "INVALID_ARGUMENT", "'image_id' is empty")
        data = value.encode("utf-8")
    elif name == "liveness_data_url":
        data = await _download(request, value)
    else:
        data = _check_size(value, name)
    flags = {}
    for flag in ("return_image", "return_extra"):
        raw = form.text(flag) or "0"
        if raw not in ("0", "1"):
            raise _fail(400, "INVALID_ARGUMENT", f"{flag} must be 0 or 1")
        flags[flag] = raw == "1"
    vector = _vector(data)
    await _apply(request, vector)
    score = _score_for(data, vector)
    reply: dict[str, Any] = {
        "request_id": _request_id(),
        "status": "OK",
        "score": _score_value(score, vector),
    }
    config = request.app[CONFIG]
    if flags["return_image"]:
        if vector.image == "invalid":
            reply["image_base64"] = "@@not-base64@@"
        else:
            image = _OVERSIZED_IMAGE if vector.image == "oversized" else _FACE_PNG
            reply["image_base64"] = encode_image(image, config.image_encoding)
    if flags["return_extra"]:
        reply["extra"] = _extra(score, as_bools=config.extra_bools)
    return web.json_response(reply, dumps=json.dumps)


def encode_image(image: bytes, encoding: str) -> str:
    """``image`` as base64 in one of the forms vendors are seen to send."""
    match encoding:
        case "urlsafe":
            return base64.urlsafe_b64encode(image).decode("ascii")
        case "unpadded":
            return base64.b64encode(image).decode("ascii").rstrip("=")
        case "wrapped":
            return base64.encodebytes(image).decode("ascii")
        case "data_uri":
            return "data:image/png;base64," + base64.b64encode(image).decode("ascii")
    return base64.b64encode(image).decode("ascii")


def _extra(score: float, *, as_bools: bool = False) -> dict[str, Any]:
    """Plausible quality signals derived from the score, in the vendor's sample shape."""
    live = score <= 0.98
    return {
        "mask_proba": 0.001,
        "quality_score": 0.961,
        "quality_too_low": False,
        "blur_or_dark": False,
        "has_no_face": False,
        "face_too_small": False,
        "image_too_small": False,
        "masked": False,
        "face_quality_low": False,
        "face_quality_score": True if as_bools else 0.9981434181918459,
        "is_live": live,
        "live_proba": live if as_bools else round(1.0 - score, 6),
        "eye_closed": False,
        "eye_score": 0.9786062829240756,
    }


def _percentile_ms(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))] * 1000, 1)


async def _stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    latencies = sorted(state.latencies_s)
    if request.query.get("reset") == "latency":
        state.latencies_s.clear()
    return web.json_response(
        {
            "requests": dict(state.requests),
            "total": state.total(),
            "in_flight": state.in_flight,
            "traceparents": list(state.traceparents),
            "latency": {
                "count": len(latencies),
                "p50_ms": _percentile_ms(latencies, 50),
                "p90_ms": _percentile_ms(latencies, 90),
                "p99_ms": _percentile_ms(latencies, 99),
                "max_ms": _percentile_ms(latencies, 100),
            },
        }
    )
