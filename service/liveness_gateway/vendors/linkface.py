"""LinkFace: upload_liveness_data and liveness_hack_detect.

Credentials travel in the form body, as the parameter tables say (the cURL samples put them
in the query string; the sandbox accepts both, the gateway sends the table's form). Detect's
data part is ``liveness_data_file`` in the table and ``file`` in eight of the nine samples:
``--linkface-detect-file-part`` chooses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from liveness_gateway.config import LINKFACE, VendorConfig
from liveness_gateway.validation import Source
from liveness_gateway.vendors.base import (
    CallOptions,
    Endpoint,
    FormPart,
    ParseContext,
    VendorReply,
    VendorRequest,
    read_document,
    score_of,
)

_SMALL_REPLY_BYTES = 64 * 1024
"""A reply of a status, a score and two ids: a few hundred bytes, with room to spare."""


@dataclass(frozen=True)
class UploadResult:
    liveness_data_id: str
    request_id: str


@dataclass(frozen=True)
class DetectResult:
    score: float
    liveness_data_id: str
    request_id: str


@functools.lru_cache(maxsize=8)
def _credentials(api_id: str, api_secret: str) -> tuple[FormPart, ...]:
    """The form's credential parts, made once per configured pair (they are immutable)."""
    return (FormPart("api_id", api_id), FormPart("api_secret", api_secret))


def _build(
    endpoint: Endpoint[Any], cfg: VendorConfig, source: Source, options: CallOptions
) -> VendorRequest:
    return endpoint.request(cfg, source, _credentials(cfg.api_id, cfg.api_secret), options=options)


def _parse_upload(reply: VendorReply, context: ParseContext) -> UploadResult:
    doc = read_document(reply, context)
    # The table says liveness_data_id; the documented sample says image_id.
    data_id = doc.text_field("liveness_data_id", "image_id")
    if not data_id:
        raise doc.bad("no liveness_data_id")
    return UploadResult(liveness_data_id=data_id, request_id=doc.request_id)


def _parse_detect(reply: VendorReply, context: ParseContext) -> DetectResult:
    doc = read_document(reply, context)
    return DetectResult(
        score=score_of(doc),
        liveness_data_id=doc.text_field("liveness_data_id", "image_id"),
        request_id=doc.request_id,
    )


UPLOAD: Endpoint[UploadResult] = Endpoint(
    vendor=LINKFACE,
    name="upload_liveness_data",
    setting="upload",
    path="/resources/upload_liveness_data",
    rpc="Upload",
    idempotent=False,  # each upload stores a new object: resent only if it never left
    parts={"data": "file", "url": "url"},
    builder=_build,
    parser=_parse_upload,
    max_reply_bytes=_SMALL_REPLY_BYTES,
)

DETECT: Endpoint[DetectResult] = Endpoint(
    vendor=LINKFACE,
    name="liveness_hack_detect",
    setting="detect",
    path="/hackness/liveness_hack_detect",
    rpc="Detect",
    idempotent=True,
    parts={"data": "liveness_data_file", "url": "liveness_data_url", "id": "liveness_data_id"},
    file_part_readings=("file",),
    builder=_build,
    parser=_parse_detect,
    max_reply_bytes=_SMALL_REPLY_BYTES,
)
