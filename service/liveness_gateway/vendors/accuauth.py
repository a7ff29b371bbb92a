"""AccuAuth: liveness_anti_hack. Credentials travel in X-DF-API-* headers."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liveness_gateway.config import ACCUAUTH, MAX_GRPC_MESSAGE_BYTES, VendorConfig
from liveness_gateway.validation import Source
from liveness_gateway.vendors.base import (
    CallOptions,
    Document,
    Endpoint,
    FormPart,
    ParseContext,
    VendorReply,
    VendorRequest,
    read_document,
    score_of,
)

# Every field of the documented ``extra`` object, by the type the gateway exposes. The page
# calls face_quality_score and live_proba bools, its sample shows floats: they are floats
# here, and a bool sent for one of them arrives as 1.0 or 0.0.
EXTRA_FLOATS = ("mask_proba", "quality_score", "face_quality_score", "live_proba", "eye_score")
EXTRA_BOOLS = (
    "quality_too_low",
    "blur_or_dark",
    "has_no_face",
    "face_too_small",
    "image_too_small",
    "masked",
    "face_quality_low",
    "is_live",
    "eye_closed",
)

IMAGE_INVALID = "invalid"
"""Why an image was dropped (a metric label): it could not be decoded."""


@dataclass(frozen=True)
class AntiHackResult:
    score: float
    request_id: str
    image: bytes | None
    extra: Mapping[str, float | bool] | None
    image_dropped: str | None = None
    """Set when the vendor sent an image that could not be used (the score still stands)."""


def _build(
    endpoint: Endpoint[Any], cfg: VendorConfig, source: Source, options: CallOptions
) -> VendorRequest:
    flags = [
        FormPart("return_image", "1" if options.return_image else "0"),
        FormPart("return_extra", "1" if options.return_extra else "0"),
    ]
    return endpoint.request(
        cfg,
        source,
        flags,
        headers={"X-DF-API-ID": cfg.api_id, "X-DF-API-SECRET": cfg.api_secret},
        options=options,
    )


def _parse_anti_hack(reply: VendorReply, context: ParseContext) -> AntiHackResult:
    doc = read_document(reply, context)
    image, dropped = _image(doc) if context.options.return_image else (None, None)
    return AntiHackResult(
        score=score_of(doc),
        request_id=doc.request_id,
        image=image,
        extra=_extra(doc) if context.options.return_extra else None,
        image_dropped=dropped,
    )


_DATA_URI = re.compile(r"data:[\w.+/-]*(;[\w.+=-]+)*;base64,", re.ASCII)
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}", re.ASCII)


def decode_image(raw: str) -> bytes | None:
    """Every common base64 form: standard or URL-safe alphabet, padded or not, wrapped in
    lines, or behind a ``data:`` prefix. None when it is none of them."""
    text = raw.strip()
    prefix = _DATA_URI.match(text)
    if prefix is not None:
        text = text[prefix.end() :]
    text = "".join(text.split())  # line-wrapped (MIME) base64
    if not _BASE64_TEXT.fullmatch(text):
        return None
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        return None
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def _image(doc: Document) -> tuple[bytes | None, str | None]:
    raw = doc.fields.get("image_base64")
    if raw is None or raw == "":
        return None, None
    image = decode_image(raw) if isinstance(raw, str) else None
    if not image:
        return None, IMAGE_INVALID
    return image, None


def _extra(doc: Document) -> dict[str, float | bool] | None:
    raw = doc.fields.get("extra")
    if not isinstance(raw, dict):
        return None  # absent, or not an object: the score stands without it
    extra: dict[str, float | bool] = {}
    # Unknown keys are ignored; a known key of the wrong type is left out (absent), never
    # guessed at.
    for name in EXTRA_FLOATS:
        value = raw.get(name)
        if isinstance(value, bool):
            extra[name] = 1.0 if value else 0.0
            continue
        if not isinstance(value, int | float):
            continue
        try:
            number = float(value)
        except OverflowError:  # a huge JSON integer
            continue
        if math.isfinite(number):
            extra[name] = number
    for name in EXTRA_BOOLS:
        value = raw.get(name)
        if isinstance(value, bool):
            extra[name] = value
        elif isinstance(value, int) and value in (0, 1):
            extra[name] = bool(value)
    return extra


ANTI_HACK: Endpoint[AntiHackResult] = Endpoint(
    vendor=ACCUAUTH,
    name="liveness_anti_hack",
    setting="anti-hack",
    path="/face/liveness_anti_hack",
    rpc="AntiHack",
    idempotent=True,
    parts={"data": "liveness_data_file", "id": "image_id"},
    builder=_build,
    parser=_parse_anti_hack,
    # A face image as base64 that still fits the gRPC response, plus the rest of the reply.
    max_reply_bytes=MAX_GRPC_MESSAGE_BYTES * 4 // 3 + 64 * 1024,
)
