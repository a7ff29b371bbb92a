"""Property tests: any input to the validator or a vendor parser gives a value or a typed
GatewayError, never an unhandled exception, and never a score outside [0, 1]."""

from __future__ import annotations

import functools
import json
import math

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from liveness.v1 import liveness_pb2 as pb
from liveness_gateway.config import MAX_LIVENESS_BYTES
from liveness_gateway.errors import GatewayError
from liveness_gateway.scrub import Scrubber
from liveness_gateway.validation import source_of
from liveness_gateway.vendors import ENDPOINTS, accuauth
from liveness_gateway.vendors.base import CallOptions, ParseContext, VendorReply
from liveness_gateway.wire import deserializer

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=True)
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
reply_fields = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["OK", "INVALID_ARGUMENT", "OUT_OF_QUOTA", "", "WEIRD"])
        | json_values,
        "score": st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=10)
        | json_values,
        "request_id": json_values,
        "liveness_data_id": json_values,
        "image_id": json_values,
        "image_base64": st.text(max_size=40) | json_values,
        "extra": st.dictionaries(
            st.sampled_from([*accuauth.EXTRA_FLOATS, *accuauth.EXTRA_BOOLS, "other"]), json_values
        )
        | json_values,
        "reason": json_values,
    },
)
http_statuses = st.sampled_from([200, 201, 400, 401, 403, 404, 429, 500, 502, 503, 504, 302])


def _check_reply(parse, body: bytes, http: int) -> None:
    try:
        result = parse(VendorReply("v", http, body, None))
    except GatewayError as err:
        assert isinstance(err.code, grpc.StatusCode)
        assert err.reason
        return
    score = getattr(result, "score", None)
    if score is not None:
        assert math.isfinite(score)
        assert 0.0 <= score <= 1.0


# Every endpoint, with every option on, as the gateway calls them (secrets configured).
PARSERS = [
    functools.partial(
        e.parse,
        context=ParseContext(
            e, Scrubber(["s3cret"]), CallOptions(return_image=True, return_extra=True)
        ),
    )
    for e in ENDPOINTS
]


@SETTINGS
@given(st.binary(max_size=300), http_statuses)
def test_parsers_take_any_bytes(body: bytes, http: int) -> None:
    for parse in PARSERS:
        _check_reply(parse, body, http)


@SETTINGS
@given(reply_fields, http_statuses)
def test_parsers_take_any_json_shape(fields: dict, http: int) -> None:
    body = json.dumps(fields, allow_nan=True).encode()
    for parse in PARSERS:
        _check_reply(parse, body, http)


requests = st.one_of(
    st.builds(pb.DetectRequest),
    st.builds(lambda b: pb.DetectRequest(liveness_data=b), st.binary(max_size=64)),
    st.builds(lambda u: pb.DetectRequest(liveness_data_url=u), st.text(max_size=3000)),
    st.builds(lambda i: pb.DetectRequest(liveness_data_id=i), st.text(max_size=400)),
    st.builds(lambda u: pb.UploadRequest(liveness_data_url=u), st.text(max_size=100)),
    st.builds(lambda i: pb.AntiHackRequest(image_id=i), st.text(max_size=400)),
)


@SETTINGS
@given(requests, st.lists(st.text(max_size=20), max_size=3))
def test_validator_takes_any_request(request, allow_hosts: list[str]) -> None:
    try:
        received = deserializer(type(request))(request.SerializeToString())
        source = source_of(received, url_allow_hosts=tuple(allow_hosts))
    except GatewayError as err:
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert len(err.violations) == 1
        return
    if source.kind == "data":
        assert 0 < source.size <= MAX_LIVENESS_BYTES
    else:
        assert source.text.strip()
        assert source.text.isprintable()
        if source.kind == "url":
            assert source.text.lower().startswith(("http://", "https://"))
            assert len(source.text) <= 2048
