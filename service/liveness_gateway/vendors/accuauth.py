"""AccuAuth: liveness_anti_hack. Credentials travel in X-DF-API-* headers."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass

from liveness_gateway.config import VendorConfig
from liveness_gateway.validation import Source
from liveness_gateway.vendors.base import (
    Document,
    FormPart,
    VendorReply,
    VendorRequest,
    read_document,
    score_of,
)

ANTI_HACK_PATH = "/face/liveness_anti_hack"
ANTI_HACK = "liveness_anti_hack"

# Every field of the documented ``extra`` object, by the type the gateway exposes. The page
# calls face_quality_score and live_proba bools, its sample shows floats: they are floats here.
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


@dataclass(frozen=True)
class AntiHackResult:
    score: float
    request_id: str
    image: bytes | None
    extra: Mapping[str, float | bool] | None


def build_anti_hack(
    cfg: VendorConfig, source: Source, *, return_image: bool, return_extra: bool
) -> VendorRequest:
    if source.kind == "data":
        part = FormPart("liveness_data_file", source.data, filename="liveness_data")
    elif source.kind == "id":
        part = FormPart("image_id", source.text)
    else:
        raise ValueError("anti-hack takes bytes or an image id")
    return VendorRequest(
        vendor=cfg.name,
        endpoint=ANTI_HACK,
        url=cfg.base_url + ANTI_HACK_PATH,
        parts=[
            part,
            FormPart("return_image", "1" if return_image else "0"),
            FormPart("return_extra", "1" if return_extra else "0"),
        ],
        headers={"X-DF-API-ID": cfg.api_id, "X-DF-API-SECRET": cfg.api_secret},
        secrets=(cfg.api_secret,),
    )


def parse_anti_hack(reply: VendorReply, secrets: tuple[str, ...] = ()) -> AntiHackResult:
    doc = read_document(reply, secrets)
    return AntiHackResult(
        score=score_of(doc),
        request_id=doc.request_id,
        image=_image(doc),
        extra=_extra(doc),
    )


def _image(doc: Document) -> bytes | None:
    raw = doc.fields.get("image_base64")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise doc.bad("image_base64 is not a string")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise doc.bad("image_base64 is not valid base64") from None


def _extra(doc: Document) -> dict[str, float | bool] | None:
    raw = doc.fields.get("extra")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise doc.bad("extra is not an object")
    extra: dict[str, float | bool] = {}
    # Unknown keys are ignored; a known key of the wrong type is left out (absent), never
    # guessed at.
    for name in EXTRA_FLOATS:
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
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
