"""Request validation, before any vendor quota is spent.

Each check names the offending field, so the caller gets a google.rpc.BadRequest it can act
on. Validation returns the chosen source as a small value; the vendor modules never look at
the protobuf request again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from liveness_gateway import errors
from liveness_gateway.config import MAX_LIVENESS_BYTES, MAX_URL_CHARS
from liveness_gateway.errors import FieldViolation
from liveness_gateway.wire import DATA_FIELD, SOURCE_ONEOF, Received

SourceKind = Literal["data", "url", "id"]

_MAX_ID_CHARS = 256


@dataclass(frozen=True)
class Source:
    """Where the liveness data comes from; exactly one of the three kinds."""

    kind: SourceKind
    data: bytes | memoryview = b""
    text: str = ""
    """The url or the id, for those kinds."""

    @property
    def size(self) -> int:
        return len(self.data)


# field name in the proto -> the source kind it carries
_URL_FIELDS = {"liveness_data_url": "url"}
_ID_FIELDS = {"liveness_data_id": "id", "image_id": "id"}


def source_of(request: Received[Any], *, url_allow_hosts: tuple[str, ...] = ()) -> Source:
    """Validate the ``source`` oneof of any of the three requests, as the deserializers of
    :mod:`liveness_gateway.wire` deliver them (the liveness data set aside, as a view)."""
    if request.malformed:
        raise errors.invalid_request(
            [FieldViolation("request", "not a valid protocol buffers message")]
        )
    if request.liveness_data is not None:
        violation = _check(DATA_FIELD, request.liveness_data, url_allow_hosts)
        if violation is not None:
            raise errors.invalid_request([violation])
        return Source("data", data=request.liveness_data)
    which = request.message.WhichOneof(SOURCE_ONEOF)
    if which is None:
        raise errors.invalid_request(
            [FieldViolation(SOURCE_ONEOF, "exactly one liveness data source must be set")]
        )
    value = getattr(request.message, which)
    violation = _check(which, value, url_allow_hosts)
    if violation is not None:
        raise errors.invalid_request([violation])
    if which in _URL_FIELDS:
        return Source("url", text=value)
    return Source("id", text=value)


def _check(
    field: str, value: bytes | memoryview | str, allow_hosts: tuple[str, ...]
) -> FieldViolation | None:
    if not isinstance(value, str):
        if not value:
            return FieldViolation(field, "must not be empty")
        if len(value) > MAX_LIVENESS_BYTES:
            return FieldViolation(
                field, f"is {len(value)} bytes; the vendors accept at most {MAX_LIVENESS_BYTES}"
            )
        return None
    if field in _URL_FIELDS:
        return _check_url(field, value, allow_hosts)
    if not value.strip():
        return FieldViolation(field, "must not be empty")
    if len(value) > _MAX_ID_CHARS:
        return FieldViolation(field, f"must be at most {_MAX_ID_CHARS} characters")
    if not value.isprintable():
        return FieldViolation(field, "must not contain control characters")
    return None


def _check_url(field: str, url: str, allow_hosts: tuple[str, ...]) -> FieldViolation | None:
    if not url:
        return FieldViolation(field, "must not be empty")
    if len(url) > MAX_URL_CHARS:
        return FieldViolation(field, f"must be at most {MAX_URL_CHARS} characters")
    if not url.isprintable() or any(ch.isspace() for ch in url):
        return FieldViolation(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return FieldViolation(field, "is not a valid URL")
    if parts.scheme not in ("http", "https"):
        return FieldViolation(field, "must be an absolute http:// or https:// URL")
    if not parts.hostname:
        return FieldViolation(field, "must name a host")
    if parts.username is not None or parts.password is not None:
        return FieldViolation(field, "must not carry credentials (user:password@)")
    if allow_hosts and not host_allowed(parts.hostname, allow_hosts):
        return FieldViolation(field, "names a host that is not on the gateway's allow-list")
    return None


def host_allowed(host: str, allow_hosts: tuple[str, ...]) -> bool:
    """Exact names, or ``*.example.com`` for any subdomain of example.com."""
    host = host.lower().rstrip(".")
    for entry in allow_hosts:
        entry = entry.lower()
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False
