"""LinkFace: upload_liveness_data and liveness_hack_detect.

Credentials travel in the form body, as the parameter tables say (the cURL samples put them
in the query string; the sandbox accepts both, the gateway sends the table's form).
"""

from __future__ import annotations

from dataclasses import dataclass

from liveness_gateway.config import VendorConfig
from liveness_gateway.validation import Source
from liveness_gateway.vendors.base import (
    FormPart,
    VendorReply,
    VendorRequest,
    read_document,
    score_of,
    text_field,
)

UPLOAD_PATH = "/resources/upload_liveness_data"
DETECT_PATH = "/hackness/liveness_hack_detect"
UPLOAD = "upload_liveness_data"
DETECT = "liveness_hack_detect"

_FILENAME = "liveness_data"


@dataclass(frozen=True)
class UploadResult:
    liveness_data_id: str
    request_id: str


@dataclass(frozen=True)
class DetectResult:
    score: float
    liveness_data_id: str
    request_id: str


def _credentials(cfg: VendorConfig) -> list[FormPart]:
    return [FormPart("api_id", cfg.api_id), FormPart("api_secret", cfg.api_secret)]


def build_upload(cfg: VendorConfig, source: Source) -> VendorRequest:
    if source.kind == "data":
        part = FormPart("file", source.data, filename=_FILENAME)
    elif source.kind == "url":
        part = FormPart("url", source.text)
    else:
        raise ValueError("upload takes bytes or a url")
    return VendorRequest(
        vendor=cfg.name,
        endpoint=UPLOAD,
        url=cfg.base_url + UPLOAD_PATH,
        parts=[*_credentials(cfg), part],
        secrets=(cfg.api_secret,),
    )


def parse_upload(reply: VendorReply, secrets: tuple[str, ...] = ()) -> UploadResult:
    doc = read_document(reply, secrets)
    # The table says liveness_data_id; the documented sample says image_id.
    data_id = text_field(doc, "liveness_data_id", "image_id")
    if not data_id:
        raise doc.bad("no liveness_data_id")
    return UploadResult(liveness_data_id=data_id, request_id=doc.request_id)


def build_detect(cfg: VendorConfig, source: Source) -> VendorRequest:
    if source.kind == "data":
        part = FormPart("liveness_data_file", source.data, filename=_FILENAME)
    elif source.kind == "url":
        part = FormPart("liveness_data_url", source.text)
    else:
        part = FormPart("liveness_data_id", source.text)
    return VendorRequest(
        vendor=cfg.name,
        endpoint=DETECT,
        url=cfg.base_url + DETECT_PATH,
        parts=[*_credentials(cfg), part],
        secrets=(cfg.api_secret,),
    )


def parse_detect(reply: VendorReply, secrets: tuple[str, ...] = ()) -> DetectResult:
    doc = read_document(reply, secrets)
    return DetectResult(
        score=score_of(doc),
        liveness_data_id=text_field(doc, "liveness_data_id", "image_id"),
        request_id=doc.request_id,
    )
