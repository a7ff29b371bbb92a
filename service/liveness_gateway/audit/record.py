"""One audit record: what the gateway decided for one call, in hashes and numbers only.

A :class:`Decision` never holds the liveness data, a url (or its query), or an image: those
are biometric data. It holds the SHA-256 of inline liveness data, the ids the vendor gave,
the score, the threshold, the verdict and the outcome.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now_s: float | None = None) -> str:
    """A ULID: 48 bits of milliseconds since the epoch, then 80 random bits, in 26 Crockford
    base32 characters. Ids sort by time, so a page of decisions is an index range."""
    millis = int((time.time() if now_s is None else now_s) * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of :func:`new_id`'s ids."""
    return len(text) == 26 and text[0] in "01234567" and all(c in _CROCKFORD for c in text)


@dataclass(frozen=True, slots=True)
class Decision:
    """One call's record. Times are microseconds since the Unix epoch (UTC); latencies are
    microseconds; empty strings and None stand for "not known for this call"."""

    id: str
    time_us: int
    """When the outcome was known (the record is written right after)."""
    request_id: str
    """The call's ``x-request-id`` (the caller's, or the one the gateway gave it)."""
    client_request_id: str
    """The ``request_id`` field of the request (AIP-155), where the caller set one."""
    caller: str
    rpc: str
    vendor: str
    vendor_endpoint: str
    vendor_request_id: str
    liveness_data_id: str
    source: str
    """Where the liveness data came from: ``data``, ``url``, ``id`` (or empty: never read)."""
    liveness_data_sha256: str
    """Hex SHA-256 of inline liveness data; empty for a url or an id source."""
    score: float | None
    threshold: float | None
    verdict: str
    """``live``, ``hack``, ``review``; empty without a decision."""
    code: str
    """The gRPC status code's name (``OK``, ``UNAVAILABLE``, ...)."""
    reason: str
    """The ErrorInfo reason of a failure; empty on success."""
    attempts: int
    """Requests sent to the vendor (retries included); 0: the call never reached it."""
    vendor_latency_us: int
    """Time spent in vendor exchanges, all attempts together."""
    total_latency_us: int
    gateway_version: str
    host: str

    def as_row(self) -> tuple[Any, ...]:
        """The values in column order (:data:`COLUMNS`)."""
        return tuple(getattr(self, name) for name in COLUMNS)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: Any) -> Decision:
        """From a database row or a mapping with the column names."""
        if isinstance(row, dict):
            return cls(**{name: row[name] for name in COLUMNS})
        return cls(*(row[i] for i in range(len(COLUMNS))))


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Decision))
"""The table's columns, in order."""
