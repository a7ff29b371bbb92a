"""The vendor modules as plain functions: request building and reply parsing, no network."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from liveness_gateway import errors
from liveness_gateway.config import VendorConfig
from liveness_gateway.errors import GatewayError
from liveness_gateway.scrub import Scrubber
from liveness_gateway.validation import Source
from liveness_gateway.vendors import accuauth, linkface
from liveness_gateway.vendors.base import CallOptions, ParseContext, VendorReply

LF = VendorConfig("linkface", "https://lf.test", "ID", "SECRET")
AA = VendorConfig("accuauth", "https://aa.test", "AID", "ASECRET")


def reply(body: Any, http: int = 200, vendor: str = "linkface", **kw: Any) -> VendorReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return VendorReply(vendor=vendor, http_status=http, body=raw, **kw)


def parts(request) -> dict[str, Any]:
    return {p.name: (p.value, p.filename) for p in request.parts}


def test_linkface_detect_sends_the_table_fields() -> None:
    data = linkface.DETECT.build(LF, Source("data", data=b"blob"))
    assert data.url == "https://lf.test/hackness/liveness_hack_detect"
    assert parts(data) == {
        "api_id": ("ID", None),
        "api_secret": ("SECRET", None),
        "liveness_data_file": (b"blob", "liveness_data"),
    }
    assert not data.headers
    assert parts(linkface.DETECT.build(LF, Source("url", text="http://x/y")))[
        "liveness_data_url"
    ] == ("http://x/y", None)
    assert parts(linkface.DETECT.build(LF, Source("id", text="LD1")))["liveness_data_id"] == (
        "LD1",
        None,
    )


def test_linkface_upload_sends_file_or_url() -> None:
    up = linkface.UPLOAD.build(LF, Source("data", data=b"b"))
    assert up.url == "https://lf.test/resources/upload_liveness_data"
    assert parts(up)["file"] == (b"b", "liveness_data")
    assert parts(linkface.UPLOAD.build(LF, Source("url", text="http://u")))["url"] == (
        "http://u",
        None,
    )


def test_accuauth_sends_credentials_in_headers_only() -> None:
    req = accuauth.ANTI_HACK.build(
        AA, Source("id", text="img"), CallOptions(return_image=True, return_extra=False)
    )
    assert req.url == "https://aa.test/face/liveness_anti_hack"
    assert req.headers == {"X-DF-API-ID": "AID", "X-DF-API-SECRET": "ASECRET"}
    assert parts(req) == {
        "image_id": ("img", None),
        "return_image": ("1", None),
        "return_extra": ("0", None),
    }
    assert "ASECRET" not in repr(req)


@pytest.mark.parametrize("score", ["0.5", 0.5, "5e-1", 1, 0])
def test_score_string_or_number(score: Any) -> None:
    result = linkface.DETECT.parse(reply({"status": "OK", "score": score, "request_id": "TID1"}))
    assert result.score == float(score)
    assert result.request_id == "TID1"


@pytest.mark.parametrize(
    "score",
    ["NaN", "inf", -0.1, 1.01, "abc", None, True, [0.5], {}, 10**400, "1" + "0" * 400,
     "0_1", " 0.5", "\u0660.\u0665", "0x1", ""],
)  # fmt: skip
def test_bad_scores_are_refused(score: Any) -> None:
    with pytest.raises(GatewayError) as caught:
        linkface.DETECT.parse(reply({"status": "OK", "score": score}))
    assert caught.value.reason == errors.VENDOR_BAD_REPLY
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_upload_id_under_either_key_and_unknown_fields_ignored() -> None:
    doc = {"status": "OK", "image_id": "I1", "surprise": {"x": 1}}
    assert linkface.UPLOAD.parse(reply(doc)).liveness_data_id == "I1"
    doc = {"status": "OK", "liveness_data_id": "L1", "image_id": "I1"}
    assert linkface.UPLOAD.parse(reply(doc)).liveness_data_id == "L1"
    with pytest.raises(GatewayError):
        linkface.UPLOAD.parse(reply({"status": "OK"}))


def test_extra_tolerates_floats_where_the_page_says_bool() -> None:
    body = {
        "status": "OK",
        "score": "0.1",
        "extra": {
            "face_quality_score": 0.99,
            "live_proba": True,  # the table types it bool: arrives as 1.0
            "quality_score": 10**400,  # too big for a float: left out
            "is_live": 1,
            "masked": "no",  # wrong type: left out, not guessed
            "eye_score": float("nan"),
            "unknown_signal": 3,
        },
    }
    asked = ParseContext(accuauth.ANTI_HACK, options=CallOptions(return_extra=True))
    result = accuauth.ANTI_HACK.parse(reply(body, vendor="accuauth"), asked)
    assert result.extra == {"face_quality_score": 0.99, "live_proba": 1.0, "is_live": True}
    assert result.image is None
    assert accuauth.ANTI_HACK.parse(reply(body, vendor="accuauth")).extra is None


@pytest.mark.parametrize("bad_id", ["T" * 257, "TID\nforged log line", 12345, ""])
def test_unusable_vendor_ids_are_dropped(bad_id: object) -> None:
    ok = linkface.DETECT.parse(reply({"status": "OK", "score": "0.1", "request_id": bad_id}))
    assert ok.request_id == ""
    with pytest.raises(GatewayError) as caught:
        linkface.DETECT.parse(reply({"status": "NO_FACE_DETECTED", "request_id": bad_id}, 400))
    assert "vendorRequestId" not in caught.value.metadata
    up = linkface.UPLOAD.parse(
        reply({"status": "OK", "image_id": "I" * 20, "liveness_data_id": bad_id})
    )
    assert up.liveness_data_id == "I" * 20


def test_undocumented_429_status_honours_retry_after() -> None:
    with pytest.raises(GatewayError) as caught:
        linkface.DETECT.parse(reply({"status": "SLOW_DOWN"}, 429, retry_after="4"))
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.retry_delay_s == 4.0
    assert caught.value.quota_subject == "vendor:linkface"


def test_error_reply_maps_through_the_table_and_scrubs_secrets() -> None:
    body = {"status": "NO_PERMISSION", "reason": "key SECRET may not", "request_id": "TID9"}
    with pytest.raises(GatewayError) as caught:
        linkface.DETECT.parse(
            reply(body, http=403), ParseContext(linkface.DETECT, Scrubber(["SECRET"]))
        )
    err = caught.value
    assert (err.code, err.reason) == (grpc.StatusCode.INTERNAL, "NO_PERMISSION")
    assert err.metadata == {
        "vendor": "linkface",
        "httpStatus": "403",
        "vendorRequestId": "TID9",
        "vendorReason": "key [redacted] may not",
    }
    assert "SECRET" not in err.message
    assert "[redacted]" in err.message


def test_ok_status_on_an_error_page_trusts_http() -> None:
    with pytest.raises(GatewayError) as caught:
        linkface.DETECT.parse(reply({"status": "OK", "score": "0.1"}, http=502))
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_error_status_on_http_200_still_fails() -> None:
    with pytest.raises(GatewayError) as caught:
        linkface.DETECT.parse(reply({"status": "WRONG_LIVENESS_DATA"}, http=200))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0.5", 0.5), (None, 1.0), ("soon", 1.0), ("-3", 0.0), ("99999", 3600.0)],
)
def test_retry_after(header: str | None, expected: float) -> None:
    assert errors.parse_retry_after(header) == expected


def test_retry_after_http_date() -> None:
    assert errors.parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now=1795600800.0) == 30.0


def test_status_has_exactly_one_error_info() -> None:
    err = errors.from_vendor_status(
        "linkface",
        "RATE_LIMIT_EXCEEDED",
        http_status=403,
        vendor_request_id=None,
        vendor_reason=None,
        retry_after="2",
    )
    status = err.to_status()
    kinds = [d.TypeName() for d in status.details]
    assert kinds.count("google.rpc.ErrorInfo") == 1
    assert set(kinds) == {"google.rpc.ErrorInfo", "google.rpc.RetryInfo", "google.rpc.QuotaFailure"}
