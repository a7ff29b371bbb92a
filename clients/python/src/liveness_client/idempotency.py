"""The idempotency key (AIP-155): the ``request_id`` field of the three requests.

A UUID in its canonical 36-character form. Within the gateway's idempotency window, the same
caller sending the same key with the same input gets the first call's result (or error) without
a second vendor call; the same key with another input is refused ``INVALID_ARGUMENT``, reason
``REQUEST_ID_REUSED``. It is not the ``x-request-id`` correlation id (``request_id=`` on the
methods and ``request_id`` on results), which names one call in the gateway's logs.

``upload`` creates an object at the vendor, so every upload without a key gets a fresh one,
made once per call and sent unchanged on every attempt gRPC makes; results and exceptions give
it back as ``idempotency_key`` so that a resend of the same upload can pass it again. ``detect``
and ``anti_hack`` are reads at the vendor, which the gateway retries itself: they send a key
only when the caller gives one.
"""

from __future__ import annotations

import re
import uuid
from typing import TypeVar

from google.protobuf.message import Message

_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

_R = TypeVar("_R", bound=Message)


def new_idempotency_key() -> str:
    """A random (version 4) UUID in its canonical form: the key ``upload`` makes by default."""
    return str(uuid.uuid4())


def is_valid_idempotency_key(key: str) -> bool:
    """Whether ``key`` is a UUID in its canonical 36-character form (8-4-4-4-12 hex digits,
    either case), the form the gateway accepts as a ``request_id``."""
    return _CANONICAL_UUID.fullmatch(key) is not None


def with_idempotency_key(
    request: _R, key: str | None, *, generate: bool, owned: bool
) -> tuple[_R, str]:
    """``request`` with its ``request_id`` set, and the key (``""`` for none).

    ``key`` is the caller's argument; the request's own ``request_id`` counts as given too (they
    must agree). Without either, ``generate`` makes one. A request the caller passed in
    (``owned=False``) is copied rather than changed. A malformed key raises ``ValueError``
    before any call, as a wrong argument does: the gateway would refuse it ``INVALID_REQUEST``.
    """
    own: str = getattr(request, "request_id")  # noqa: B009 (the three requests have it)
    if key and own and key != own:
        raise ValueError(
            f"idempotency_key {key!r} differs from the request's request_id {own!r}: give one"
        )
    chosen = key or own or (new_idempotency_key() if generate else "")
    if chosen and not is_valid_idempotency_key(chosen):
        raise ValueError(
            f"idempotency_key must be a UUID in its canonical 36-character form, got {chosen!r}"
        )
    if chosen == own:
        return request, chosen
    if not owned:
        copy = type(request)()
        copy.CopyFrom(request)
        request = copy
    setattr(request, "request_id", chosen)  # noqa: B010 (typed as Message here)
    return request, chosen
