"""Requests read without copying the liveness data: the gRPC request deserializers.

protobuf's Python API copies a ``bytes`` field twice: once into the parsed message, and again
into a new ``bytes`` object on every read of the field. For a 5 MB payload that is 10 MB per
call in flight, on top of the buffer gRPC hands over. The deserializers here find the
``liveness_data`` field in the received buffer themselves (a scan over the top-level fields'
tags and lengths, nothing else is decoded by hand), keep it as a ``memoryview`` into that
buffer, and let protobuf parse the remaining fields, which are small.

Bytes protobuf refuses come back as ``Received(malformed=True)``, never as an exception.
Anything the scan does not expect (a truncated or malformed buffer, a group, field number 0,
a tag or length longer than upb allows, more than ``MAX_SCANNED_FIELDS`` top-level fields)
is handed to protobuf's own parser unchanged, so what is accepted and what is refused stays
exactly protobuf's decision; the property tests check that both paths agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from liveness.v1 import liveness_pb2

M = TypeVar("M", bound=Message)

SERVICE = liveness_pb2.DESCRIPTOR.services_by_name["LivenessCheck"]
DATA_FIELD = "liveness_data"
SOURCE_ONEOF = "source"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
# A real request has at most 4 top-level fields. The scan is Python on the event loop: past
# this many fields, protobuf's native parser takes over, so a request of millions of tiny
# fields costs what protobuf costs (milliseconds), not seconds of a blocked loop.
MAX_SCANNED_FIELDS = 64


@dataclass(frozen=True, slots=True)
class Received(Generic[M]):
    """A parsed request; ``liveness_data`` is set (a view, not a copy) when it is the source."""

    message: M
    liveness_data: memoryview | None = None
    malformed: bool = False
    """protobuf refused the bytes; ``message`` is empty. The handler answers INVALID_ARGUMENT
    (an exception here would be gRPC's UNKNOWN with its text and a logged traceback)."""


class _MalformedError(Exception):
    """The scan met something it does not handle; protobuf's parser decides instead."""


def _varint(buf: memoryview, pos: int, limit: int = 10) -> tuple[int, int]:
    result = shift = 0
    end = min(len(buf), pos + limit)
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise _MalformedError


def split_field(
    buf: memoryview, number: int, rivals: frozenset[int]
) -> tuple[memoryview | None, bytes]:
    """The last occurrence of the length-delimited field ``number``, and the other fields.

    ``rivals`` are the numbers of the other members of its oneof: when one of them comes after
    the field, the field is not the oneof's value (protobuf's last-one-wins) and ``None`` is
    returned for it. Raises :class:`_MalformedError` on anything but well-formed top-level fields.
    """
    found: memoryview | None = None
    kept: list[memoryview] = []
    pos, start, size = 0, 0, len(buf)
    fields = 0
    while pos < size:
        fields += 1
        if fields > MAX_SCANNED_FIELDS:
            raise _MalformedError
        tag_at = pos
        tag, pos = _varint(buf, pos, 5)  # upb: a tag is at most 5 bytes and 32 bits
        if tag > 0xFFFFFFFF:
            raise _MalformedError
        field, kind = tag >> 3, tag & 7
        if field == 0:
            raise _MalformedError
        if kind == _VARINT:
            _, pos = _varint(buf, pos)
        elif kind == _I64:
            pos += 8
        elif kind == _I32:
            pos += 4
        elif kind == _LEN:
            length, pos = _varint(buf, pos, 5)  # upb: a length is at most 5 bytes, < 2**31-1
            if length >= 0x7FFFFFFF:
                raise _MalformedError
            if field == number:
                if pos + length > size:
                    raise _MalformedError
                found = buf[pos : pos + length]
                kept.append(buf[start:tag_at])
                pos += length
                start = pos
                continue
            pos += length
        else:  # groups (deprecated), or not a wire type at all
            raise _MalformedError
        if pos > size:
            raise _MalformedError
        if kind == _LEN and field in rivals:
            found = None
    kept.append(buf[start:size])
    return found, b"".join(kept)


def deserializer(message_type: type[M]) -> Callable[[bytes], Received[M]]:
    """The request deserializer for ``message_type`` (which has a ``source`` oneof)."""
    descriptor = message_type.DESCRIPTOR
    number = descriptor.fields_by_name[DATA_FIELD].number
    others = [f for f in descriptor.oneofs_by_name[SOURCE_ONEOF].fields if f.name != DATA_FIELD]
    # The scan assumes every member of the oneof is length-delimited (string or bytes).
    if any(f.type not in (f.TYPE_STRING, f.TYPE_BYTES) for f in others):
        raise TypeError(f"{descriptor.full_name}.{SOURCE_ONEOF} has a non-string member")
    rivals = frozenset(f.number for f in others)

    def parse(raw: bytes) -> Received[M]:
        try:
            return _parse(raw)
        except DecodeError:
            return Received(message_type(), malformed=True)

    def _parse(raw: bytes) -> Received[M]:
        try:
            data, rest = split_field(memoryview(raw), number, rivals)
        except _MalformedError:
            whole = message_type.FromString(raw)  # raises protobuf's DecodeError, or accepts
            if whole.WhichOneof(SOURCE_ONEOF) == DATA_FIELD:
                view = memoryview(getattr(whole, DATA_FIELD))
                whole.ClearField(DATA_FIELD)
                return Received(whole, view)
            return Received(whole)
        message = message_type.FromString(rest)
        if data is not None:
            message.ClearField(SOURCE_ONEOF)  # a rival that came before the data lost to it
        return Received(message, data)

    return parse


def add_to_server(servicer: Any, server: grpc.aio.Server) -> None:
    """Register ``servicer``'s methods as the generated code would, with these deserializers."""
    handlers = {}
    for method in SERVICE.methods:
        request_type = getattr(liveness_pb2, method.input_type.name)
        response_type = getattr(liveness_pb2, method.output_type.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=deserializer(request_type),
            response_serializer=response_type.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


__all__ = ["Received", "add_to_server", "deserializer", "split_field"]
