"""What the vendor modules share: endpoint descriptors, request/reply values, tolerant JSON.

An :class:`Endpoint` is everything the gateway knows about one vendor endpoint, in one
place: its vendor, path, the RPC it serves, whether it may be sent twice, its timeout, how
big a reply it can legitimately send, which multipart part carries each source, how to
build the request and how to read the reply. The servicer, :mod:`~liveness_gateway.upstream`,
the metrics, the settings and the sandbox all iterate over ``vendors.ENDPOINTS``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from liveness_gateway import errors
from liveness_gateway.config import VendorConfig
from liveness_gateway.scrub import NO_SECRETS, Scrubber
from liveness_gateway.validation import Source, SourceKind

R = TypeVar("R")


@dataclass(frozen=True)
class FormPart:
    """One multipart/form-data part. ``filename`` set means a file part."""

    name: str
    value: str | bytes | memoryview
    filename: str | None = None


@dataclass(frozen=True)
class CallOptions:
    """What the caller asked for beyond the source (AntiHack's image and extra signals)."""

    return_image: bool = False
    return_extra: bool = False


NO_OPTIONS = CallOptions()


@dataclass(frozen=True)
class VendorRequest:
    """A vendor call, fully described; the transport sends it as multipart/form-data."""

    vendor: str
    endpoint: str
    """Stable short name of the vendor endpoint, used in metrics and logs."""
    url: str
    parts: Sequence[FormPart]
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    options: CallOptions = NO_OPTIONS
    caller_url: bool = False
    """The vendor must first download a url the caller named (its 5 s download limit)."""
    max_reply_bytes: int = 64 * 1024
    """What is read of the reply at most; more is an unusable reply."""


@dataclass(frozen=True)
class VendorReply:
    """What came back over HTTP, before interpretation."""

    vendor: str
    http_status: int
    body: bytes
    retry_after: str | None = None


@dataclass(frozen=True)
class ParseContext:
    """What a reply parser needs besides the reply."""

    endpoint: Endpoint[Any]
    scrubber: Scrubber = NO_SECRETS
    options: CallOptions = NO_OPTIONS


Builder = Callable[["Endpoint[Any]", VendorConfig, Source, CallOptions], VendorRequest]


@dataclass(frozen=True)
class Endpoint(Generic[R]):
    """One vendor endpoint, described once (see the module docstring)."""

    vendor: str
    name: str
    """The stable short name: metrics label, log field, settings key."""
    setting: str
    """How flags and variables name it: ``--<vendor>-<setting>-timeout``."""
    path: str
    rpc: str
    """The liveness.v1 RPC it serves."""
    idempotent: bool
    """Safe to send again once it may have reached the vendor."""
    parts: Mapping[SourceKind, str]
    """The multipart part that carries each source kind, as the parameter table names it."""
    builder: Builder
    parser: Callable[[VendorReply, ParseContext], R]
    max_reply_bytes: int
    """The largest reply the endpoint can legitimately send; bounds the cost of parsing."""
    file_part_readings: tuple[str, ...] = ()
    """Other names the pages' samples give the data part (a per-endpoint setting)."""
    default_timeout_s: float | None = None
    """None: the vendor's timeout."""

    @property
    def file_part_choices(self) -> tuple[str, ...]:
        return (self.parts["data"], *self.file_part_readings) if "data" in self.parts else ()

    @property
    def source_part_names(self) -> frozenset[str]:
        return frozenset((*self.parts.values(), *self.file_part_readings))

    def build(
        self, cfg: VendorConfig, source: Source, options: CallOptions = NO_OPTIONS
    ) -> VendorRequest:
        return self.builder(self, cfg, source, options)

    def parse(self, reply: VendorReply, context: ParseContext | None = None) -> R:
        return self.parser(reply, context or ParseContext(self))

    def source_part(self, cfg: VendorConfig, kind: SourceKind) -> str:
        """The part name for ``kind``: the table's, or the configured reading for data."""
        if kind == "data":
            return cfg.file_parts.get(self.name, self.parts["data"])
        return self.parts[kind]

    def request(
        self,
        cfg: VendorConfig,
        source: Source,
        parts: Sequence[FormPart],
        *,
        headers: Mapping[str, str] | None = None,
        options: CallOptions = NO_OPTIONS,
    ) -> VendorRequest:
        """The :class:`VendorRequest` for this endpoint, with the source's part appended."""
        name = self.source_part(cfg, source.kind)
        if source.kind == "data":
            part = FormPart(name, source.data, filename="liveness_data")
        else:
            part = FormPart(name, source.text)
        return VendorRequest(
            vendor=self.vendor,
            endpoint=self.name,
            url=cfg.base_url + self.path,
            parts=[*parts, part],
            headers=headers or {},
            options=options,
            caller_url=source.kind == "url",
            max_reply_bytes=self.max_reply_bytes,
        )


@dataclass(frozen=True)
class Document:
    """A successful (``status == "OK"``) vendor JSON reply."""

    vendor: str
    fields: Mapping[str, Any]
    http_status: int
    scrubber: Scrubber = NO_SECRETS

    @property
    def request_id(self) -> str:
        return self.scrubber.id(self.fields.get("request_id"))

    def text_field(self, *names: str) -> str:
        """The first of ``names`` that holds a usable id (short, printable, no secret)."""
        for name in names:
            value = self.scrubber.id(self.fields.get(name))
            if value:
                return value
        return ""

    def bad(self, what: str) -> errors.GatewayError:
        return errors.bad_reply(
            self.vendor, what, http_status=self.http_status, vendor_request_id=self.request_id
        )


_MAX_JSON_TOKENS = 4096
"""Containers and separators a reply may hold. The documented replies have a few dozen; the
bound keeps a hostile reply from costing the event loop more than a few milliseconds."""
_FALLBACK_MAX_BYTES = 64 * 1024
"""Bodies orjson refuses (NaN tokens, UTF-16) get a second parse only below this size."""


def read_document(reply: VendorReply, context: ParseContext) -> Document:
    """Decode a reply; raise the mapped :class:`GatewayError` unless it says ``OK``."""
    scrubber = context.scrubber
    decoded = _decode(reply.body)
    if isinstance(decoded, str):
        if 200 <= reply.http_status < 300:
            raise errors.bad_reply(reply.vendor, decoded, http_status=reply.http_status)
        raise errors.from_vendor_http(
            reply.vendor, reply.http_status, retry_after=reply.retry_after
        )
    status = decoded.get("status")
    if not isinstance(status, str) or not status:
        # No usable vendor status: judge by HTTP alone.
        if 200 <= reply.http_status < 300:
            raise errors.bad_reply(reply.vendor, "no status field", http_status=reply.http_status)
        raise errors.from_vendor_http(
            reply.vendor, reply.http_status, retry_after=reply.retry_after
        )
    if status == "OK" and 200 <= reply.http_status < 300:
        return Document(reply.vendor, decoded, reply.http_status, scrubber)
    if status == "OK":  # "OK" on an error page: trust the HTTP code
        raise errors.from_vendor_http(
            reply.vendor, reply.http_status, retry_after=reply.retry_after
        )
    raise errors.from_vendor_status(
        reply.vendor,
        status,
        http_status=reply.http_status,
        vendor_request_id=scrubber.id(decoded.get("request_id")) or None,
        vendor_reason=_short_text(decoded.get("reason")),
        vendor_detail=_short_text(decoded.get("image")),
        retry_after=reply.retry_after,
        scrubber=scrubber,
        source_parts=context.endpoint.source_part_names,
    )


def _short_text(value: object) -> str | None:
    """A scalar detail as text (NO_FACE_DETECTED's ``image``, any ``reason``), else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


def _decode(body: bytes) -> dict[str, Any] | str:
    """The reply as a JSON object, or what is wrong with it. Its cost is bounded by the
    endpoint's reply cap (the transport's) and by counting tokens in C before parsing."""
    if not body or body.isspace():
        return "an empty body"
    tokens = body.count(b"{") + body.count(b"[") + body.count(b",")
    if tokens > _MAX_JSON_TOKENS:
        return f"more than {_MAX_JSON_TOKENS} JSON values"
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        if len(body) > _FALLBACK_MAX_BYTES:
            return "not JSON"
        try:  # NaN and Infinity tokens, UTF-16/32: what the standard parser also takes
            value = json.loads(body)
        except (ValueError, RecursionError):
            return "not JSON"
    if not isinstance(value, dict):
        return "not a JSON object"
    return value


def score_of(doc: Document) -> float:
    """The ``score`` field, as a number or (as the samples show) a string, within [0, 1]."""
    raw = doc.fields.get("score")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise doc.bad("score is missing or not a number")
    if isinstance(raw, str) and not _NUMBER_RE.fullmatch(raw):
        # float() also takes "0_1", " 1 " and non-ASCII digits
        raise doc.bad("score is not a number")
    try:
        score = float(raw)
    except (ValueError, OverflowError):
        raise doc.bad("score is not a number") from None
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise doc.bad("score is outside [0, 1]")
    return score


_NUMBER_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", re.ASCII)
