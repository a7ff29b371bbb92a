"""Coverage-guided fuzzing (atheris) of the request deserializers, the request validator and
the vendor reply parsers.

Run by ``make fuzz`` with a bounded number of runs; any unhandled exception is a finding.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from google.protobuf.message import DecodeError
    from liveness.v1 import liveness_pb2 as pb
    from liveness_gateway.errors import GatewayError
    from liveness_gateway.scrub import Scrubber
    from liveness_gateway.validation import source_of
    from liveness_gateway.vendors import ENDPOINTS
    from liveness_gateway.vendors.base import CallOptions, ParseContext, VendorReply
    from liveness_gateway.wire import deserializer

_CONTEXTS = tuple(
    ParseContext(e, Scrubber(["s3cret"]), CallOptions(return_image=True, return_extra=True))
    for e in ENDPOINTS
)
_HTTP = (200, 400, 401, 403, 404, 429, 500, 502)
_REQUESTS = (pb.UploadRequest, pb.DetectRequest, pb.AntiHackRequest)
_DESERIALIZERS = tuple(deserializer(t) for t in _REQUESTS)


def _deserializers_agree(kind: int, raw: bytes) -> None:
    """The copy-free deserializer accepts and refuses what protobuf does, with equal results."""
    try:
        whole = _REQUESTS[kind].FromString(raw)
    except DecodeError:
        if not _DESERIALIZERS[kind](raw).malformed:
            raise AssertionError("accepted what protobuf refuses") from None
        return
    got = _DESERIALIZERS[kind](raw)
    if got.malformed:
        raise AssertionError("refused what protobuf accepts")
    data = None
    if whole.WhichOneof("source") == "liveness_data":
        data = whole.liveness_data
        whole.ClearField("liveness_data")
    got_data = None if got.liveness_data is None else bytes(got.liveness_data)
    if (got.message, got_data) != (whole, data):
        raise AssertionError("the deserializers disagree")


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    choice = fdp.ConsumeIntInRange(0, 4)
    if choice == 4:
        kind = fdp.ConsumeIntInRange(0, 2)
        _deserializers_agree(kind, fdp.ConsumeBytes(fdp.remaining_bytes()))
        return
    if choice < 3:
        http = _HTTP[fdp.ConsumeIntInRange(0, len(_HTTP) - 1)]
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
        try:
            context = _CONTEXTS[choice]
            result = context.endpoint.parse(VendorReply("v", http, body, None), context)
        except GatewayError:
            return
        score = getattr(result, "score", 0.5)
        if not 0.0 <= score <= 1.0:
            raise AssertionError(f"score {score!r} passed through")
        return
    field = fdp.ConsumeIntInRange(0, 2)
    text = fdp.ConsumeUnicodeNoSurrogates(4096)
    request = (
        pb.DetectRequest(liveness_data=text.encode()),
        pb.DetectRequest(liveness_data_url=text),
        pb.DetectRequest(liveness_data_id=text),
    )[field]
    try:
        received = _DESERIALIZERS[1](request.SerializeToString())
        source_of(received, url_allow_hosts=("*.example.com",))
    except GatewayError:
        return


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
