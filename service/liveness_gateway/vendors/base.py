"""What the vendor modules share: request/reply values and tolerant JSON reading."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from liveness_gateway import errors


@dataclass(frozen=True)
class FormPart:
    """One multipart/form-data part. ``filename`` set means a file part."""

    name: str
    value: str | bytes | memoryview
    filename: str | None = None


@dataclass(frozen=True)
class VendorRequest:
    """A vendor call, fully described; the transport sends it as multipart/form-data."""

    vendor: str
    endpoint: str
    """Stable short name of the vendor endpoint, used in metrics and logs."""
    url: str
    parts: Sequence[FormPart]
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    secrets: Sequence[str] = field(default=(), repr=False)
    """Values to scrub from anything the vendor echoes back."""


@dataclass(frozen=True)
class VendorReply:
    """What came back over HTTP, before interpretation."""

    vendor: str
    http_status: int
    body: bytes
    retry_after: str | None = None


@dataclass(frozen=True)
class Document:
    """A successful (``status == "OK"``) vendor JSON reply."""

    vendor: str
    fields: Mapping[str, Any]
    http_status: int

    @property
    def request_id(self) -> str:
        return vendor_id(self.fields.get("request_id"))

    def bad(self, what: str) -> errors.GatewayError:
        return errors.bad_reply(
            self.vendor, what, http_status=self.http_status, vendor_request_id=self.request_id
        )


_MAX_JSON_DEPTH = 32


def read_document(reply: VendorReply, secrets: Sequence[str] = ()) -> Document:
    """Decode a reply; raise the mapped :class:`GatewayError` unless it says ``OK``."""
    doc = _decode(reply.body) or {}
    status = doc.get("status")
    if not isinstance(status, str) or not status:
        # No usable vendor status: judge by HTTP alone.
        if 200 <= reply.http_status < 300:
            what = "no status field" if doc else "not a JSON object"
            raise errors.bad_reply(reply.vendor, what, http_status=reply.http_status)
        raise errors.from_vendor_http(
            reply.vendor, reply.http_status, retry_after=reply.retry_after
        )
    if status == "OK" and 200 <= reply.http_status < 300:
        return Document(reply.vendor, doc, reply.http_status)
    if status == "OK":  # "OK" on an error page: trust the HTTP code
        raise errors.from_vendor_http(
            reply.vendor, reply.http_status, retry_after=reply.retry_after
        )
    reason = doc.get("reason")
    raise errors.from_vendor_status(
        reply.vendor,
        status,
        http_status=reply.http_status,
        vendor_request_id=vendor_id(doc.get("request_id")) or None,
        vendor_reason=reason if isinstance(reason, str) else None,
        retry_after=reply.retry_after,
        redact=secrets,
    )


def _decode(body: bytes) -> dict[str, Any] | None:
    if not body.strip():
        return None
    try:
        # orjson first: several times faster on the usual reply. What it refuses (NaN and
        # Infinity tokens, UTF-16/32, nesting past 1024) goes to json, which decides as before.
        value = orjson.loads(body)
    except ValueError:
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return None
    if not isinstance(value, dict) or _depth(value) > _MAX_JSON_DEPTH:
        return None
    return value


def _depth(value: object, level: int = 0) -> int:
    if level > _MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def score_of(doc: Document) -> float:
    """The ``score`` field, as a number or (as the samples show) a string, within [0, 1]."""
    raw = doc.fields.get("score")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise doc.bad("score is missing or not a number")
    if isinstance(raw, str) and not _NUMBER_RE.fullmatch(raw):
        raise doc.bad(
            "score is not a number"
        )  # float() also takes "0_1", " 1 " and non-ASCII digits
    try:
        score = float(raw)
    except (ValueError, OverflowError):
        raise doc.bad("score is not a number") from None
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise doc.bad("score is outside [0, 1]")
    return score


_MAX_ID_CHARS = 128
_NUMBER_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", re.ASCII)


def vendor_id(value: object) -> str:
    """An id the vendor sent, if it is short and printable; it goes into metadata and logs."""
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID_CHARS and value.isprintable():
        return value
    return ""


def text_field(doc: Document, *names: str) -> str:
    """The first of ``names`` that holds a usable id (short, printable), else ``""``."""
    for name in names:
        value = vendor_id(doc.fields.get(name))
        if value:
            return value
    return ""
