"""Sandbox test vectors: liveness data that asks the sandbox for a specific reply.

Syntax (a public interface: keep it stable)::

    SANDBOX:<key>=<value>[;<key>=<value>...][\\n<any padding bytes>]

The directives are the first line of the liveness data (so a vector can be padded to any
size), or a whole ``liveness_data_id`` / ``image_id``. Anything that does not start with
``SANDBOX:`` is ordinary data and gets a deterministic score from its SHA-256.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

PREFIX = b"SANDBOX:"

BODY_SHAPES = ("json", "empty", "html", "garbage", "truncated", "not_object", "nested", "huge")
_MAX_DELAY_MS = 60_000


class VectorError(ValueError):
    """A malformed vector; the sandbox answers INVALID_ARGUMENT with this text."""


@dataclass(frozen=True)
class Vector:
    """What the caller asked the sandbox to do. Defaults: a normal, successful reply."""

    score: float | None = None
    status: str | None = None
    http: int | None = None
    retry_after: str | None = None
    delay_ms: int = 0
    body: str = "json"
    drop: bool = False
    score_format: str = "string"
    id_key: str | None = None
    image: str = "valid"
    score_raw: str | None = None
    pad: str = ""


def parse(data: bytes) -> Vector | None:
    """The vector in ``data``, None for ordinary data; raises VectorError when malformed."""
    if not data.startswith(PREFIX):
        return None
    line = data[len(PREFIX) :].split(b"\n", 1)[0].strip()
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise VectorError("sandbox vector must be ASCII") from None
    values: dict[str, object] = {}
    for item in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = item.partition("=")
        if not sep:
            raise VectorError(f"sandbox directive {item!r} needs key=value")
        values[key] = _convert(key, value)
    return Vector(**values)  # type: ignore[arg-type]


def _convert(key: str, value: str) -> object:
    match key:
        case "score":
            score = _number(key, value)
            if not math.isfinite(score) or not 0.0 <= score <= 1.0:
                raise VectorError("sandbox score must be within [0, 1]")
            return score
        case "status":
            if not value or not value.replace("_", "").isalnum():
                raise VectorError("sandbox status must be a word like OUT_OF_QUOTA")
            return value
        case "http":
            code = int(_number(key, value))
            if not 200 <= code <= 599:
                raise VectorError("sandbox http must be an HTTP status code")
            return code
        case "retry_after":
            return value
        case "delay_ms":
            delay = int(_number(key, value))
            if not 0 <= delay <= _MAX_DELAY_MS:
                raise VectorError(f"sandbox delay_ms must be within [0, {_MAX_DELAY_MS}]")
            return delay
        case "body":
            if value not in BODY_SHAPES:
                raise VectorError(f"sandbox body must be one of {', '.join(BODY_SHAPES)}")
            return value
        case "drop":
            return _flag(key, value)
        case "score_format":
            if value not in ("string", "number"):
                raise VectorError("sandbox score_format must be string or number")
            return value
        case "id_key":
            if value not in ("image_id", "liveness_data_id"):
                raise VectorError("sandbox id_key must be image_id or liveness_data_id")
            return value
        case "score_raw":
            return value
        case "pad":  # ignored: makes a vector (used as an id) as long as a test needs
            return value
        case "image":
            if value not in ("valid", "invalid", "oversized"):
                raise VectorError("sandbox image must be valid, invalid or oversized")
            return value
    raise VectorError(f"unknown sandbox directive {key!r}")


def _number(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise VectorError(f"sandbox {key} must be a number") from None
    if not math.isfinite(number):
        raise VectorError(f"sandbox {key} must be a finite number")
    return number


def _flag(key: str, value: str) -> bool:
    if value not in ("0", "1"):
        raise VectorError(f"sandbox {key} must be 0 or 1")
    return value == "1"


def default_score(data: bytes) -> float:
    """A deterministic score for ordinary data: the same bytes always score the same."""
    digest = hashlib.sha256(data).digest()
    return round(int.from_bytes(digest[:8], "big") / 2**64, 6)
