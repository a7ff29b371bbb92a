"""The copy-free request deserializers agree with protobuf's parser on every input: the same
message, the same liveness data, and the same refusals."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from liveness.v1 import liveness_pb2 as pb
from liveness_gateway import wire
from liveness_gateway.wire import deserializer, split_field

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = (pb.UploadRequest, pb.DetectRequest, pb.AntiHackRequest)
text = st.text(max_size=40)


def _one(message_type: type[Message]) -> st.SearchStrategy[bytes]:
    """One serialized request with any one source (or none) and the other fields."""
    sources: list[st.SearchStrategy[dict[str, Any]]] = [
        st.just({}),
        st.builds(lambda b: {"liveness_data": b}, st.binary(max_size=300)),
    ]
    for name in ("liveness_data_url", "liveness_data_id", "image_id"):
        if name in message_type.DESCRIPTOR.fields_by_name:
            sources.append(st.builds(lambda t, n=name: {n: t}, text))
    flags = st.fixed_dictionaries({})
    if message_type is pb.AntiHackRequest:
        flags = st.fixed_dictionaries(
            {"return_image": st.booleans(), "return_extra": st.booleans()}
        )
    return st.builds(
        lambda source, extra: message_type(**source, **extra).SerializeToString(),
        st.one_of(sources),
        flags,
    )


def _expected(message_type: type[Message], raw: bytes) -> tuple[Message, bytes | None]:
    whole = message_type.FromString(raw)
    if whole.WhichOneof("source") == "liveness_data":
        data = whole.liveness_data  # type: ignore[attr-defined]
        whole.ClearField("liveness_data")
        return whole, data
    return whole, None


def _agree(message_type: type[Message], raw: bytes) -> None:
    try:
        expected = _expected(message_type, raw)
    except DecodeError:
        refused = deserializer(message_type)(raw)
        assert refused.malformed
        assert refused.message == message_type()
        return
    got = deserializer(message_type)(raw)
    assert not got.malformed
    data = None if got.liveness_data is None else bytes(got.liveness_data)
    assert (got.message, data) == expected
    # the unknown fields survive too: the same bytes when written back
    assert got.message.SerializeToString() == expected[0].SerializeToString()


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__name__)
@SETTINGS
@given(data=st.data())
def test_concatenated_requests_parse_as_protobuf_merges_them(
    message_type: type[Message], data: st.DataObject
) -> None:
    """Serialized messages concatenated = merged, last source wins: the oneof edge cases."""
    parts = data.draw(st.lists(_one(message_type), min_size=1, max_size=4))
    _agree(message_type, b"".join(parts))


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__name__)
@SETTINGS
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_are_accepted_or_refused_as_protobuf_does(
    message_type: type[Message], raw: bytes
) -> None:
    _agree(message_type, raw)


@SETTINGS
@given(good=_one(pb.DetectRequest), cut=st.integers(min_value=0, max_value=400))
def test_truncated_requests_are_accepted_or_refused_as_protobuf_does(good: bytes, cut: int) -> None:
    _agree(pb.DetectRequest, good[: min(cut, len(good))])


def test_the_liveness_data_is_a_view_into_the_received_buffer_not_a_copy() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    raw = pb.DetectRequest(liveness_data=payload).SerializeToString()
    got = deserializer(pb.DetectRequest)(raw)
    assert got.liveness_data is not None
    assert got.liveness_data.obj is raw
    assert got.liveness_data == payload
    assert got.message.WhichOneof("source") is None


def test_a_later_rival_source_wins_over_the_data() -> None:
    raw = (
        pb.DetectRequest(liveness_data=b"data").SerializeToString()
        + pb.DetectRequest(liveness_data_id="LD1").SerializeToString()
    )
    got = deserializer(pb.DetectRequest)(raw)
    assert got.liveness_data is None
    assert got.message.liveness_data_id == "LD1"


def test_split_field_keeps_every_other_field_in_order() -> None:
    raw = pb.AntiHackRequest(liveness_data=b"xyz", return_image=True, return_extra=True)
    data, rest = split_field(memoryview(raw.SerializeToString()), 1, frozenset({2}))
    assert data == b"xyz"
    assert rest == pb.AntiHackRequest(return_image=True, return_extra=True).SerializeToString()


@pytest.mark.parametrize(
    "tail",
    [
        b"\x10\x01",  # field 2 as a varint: not the string member, an unknown field
        b"\x1d\x00\x00\x00\x00",  # field 3 as a fixed32
        b"\x08\x07",  # field 1 as a varint
        b"\xf8\xff\xff\xff\x0f\x05",  # the largest field number, unknown
    ],
)
def test_fields_with_another_wire_type_are_unknown_fields_not_sources(tail: bytes) -> None:
    raw = pb.DetectRequest(liveness_data=b"data").SerializeToString() + tail
    _agree(pb.DetectRequest, raw)
    got = deserializer(pb.DetectRequest)(raw)
    assert got.liveness_data == b"data"


@pytest.mark.parametrize(
    "hex_input",
    [
        "8a80808080000141",  # the liveness_data tag padded to 6 bytes: upb refuses it
        "0a81808080800041",  # its length padded to 6 bytes: upb refuses it
        "0a808080808000",
        "8501c86d782d230a0024",  # a group among the fields
        "0b0a0141" + "0c",  # a group holding a field 1, then its end tag
        "0aff" + "ff" * 8 + "7f",  # a length far past the end
    ],
)
def test_inputs_found_in_review_agree_with_protobuf(hex_input: str) -> None:
    for message_type in TYPES:
        _agree(message_type, bytes.fromhex(hex_input))


def _padded_varint(value: int, extra: int) -> bytes:
    """``value`` as a varint with ``extra`` redundant bytes (continuation bits, then 0x00)."""
    out = bytearray()
    while value >> 7:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    if not extra:
        return bytes(out + bytes([value]))
    return bytes(out + bytes([value | 0x80]) + b"\x80" * (extra - 1) + b"\x00")


@SETTINGS
@given(
    fields=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=6),
            st.sampled_from([0, 1, 2, 3, 4, 5]),
            st.integers(min_value=0, max_value=6),
            st.integers(min_value=0, max_value=6),
            st.binary(max_size=12),
        ),
        max_size=5,
    )
)
def test_padded_tags_and_lengths_and_groups_agree_with_protobuf(
    fields: list[tuple[int, int, int, int, bytes]],
) -> None:
    """Non-minimal varints (which upb accepts up to a point) and every wire type."""
    raw = bytearray()
    for number, kind, tag_pad, len_pad, body in fields:
        raw += _padded_varint(number << 3 | kind, tag_pad)
        if kind == 0:
            raw += _padded_varint(len(body), len_pad)
        elif kind == 1:
            raw += body.ljust(8, b"\0")[:8]
        elif kind == 5:
            raw += body.ljust(4, b"\0")[:4]
        elif kind == 2:
            raw += _padded_varint(len(body), len_pad) + body
        elif kind == 3:
            raw += body + _padded_varint(number << 3 | 4, 0)
    for message_type in TYPES:
        _agree(message_type, bytes(raw))


def test_the_scan_gives_up_after_a_bounded_number_of_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request of a million tiny fields is left to protobuf's native parser: the Python scan
    reads at most MAX_SCANNED_FIELDS of them (a DoS bound, checked without timing)."""
    calls = 0
    real = wire._varint

    def counting(buf: memoryview, pos: int, limit: int = 10) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        return real(buf, pos, limit)

    monkeypatch.setattr(wire, "_varint", counting)
    raw = b"\x0a\x00" * 1_000_000
    got = deserializer(pb.DetectRequest)(raw)
    assert got.liveness_data == b""
    assert calls <= 2 * (wire.MAX_SCANNED_FIELDS + 1)
