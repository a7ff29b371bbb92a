"""Logging: one structured line per RPC, JSON by default, configured only at the entry point.

The per-RPC facts are gathered in a :class:`CallRecord` that lives in a context variable for
the duration of the call: the interceptor opens it, the servicer adds the vendor's side.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

ACCESS_LOGGER = "liveness_gateway.access"
REQUEST_ID_KEY = "x-request-id"

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@dataclass
class CallRecord:
    """What the access log line says about one RPC."""

    method: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    code: str = "OK"
    reason: str = ""
    vendor: str = ""
    vendor_request_id: str = ""
    payload_bytes: int = 0
    caller: str = ""
    verdict: str = ""
    trace_id: str = ""
    """The RPC's trace and server span (hex), when tracing is on; empty otherwise."""
    span_id: str = ""

    def response_metadata(self) -> tuple[tuple[str, str], ...]:
        """What every response carries back to the caller: its request id."""
        return ((REQUEST_ID_KEY, self.request_id),)

    def fields(self, duration_s: float) -> dict[str, Any]:
        return {
            "method": self.method,
            "code": self.code,
            "reason": self.reason,
            "vendor": self.vendor,
            "vendor_request_id": self.vendor_request_id,
            "duration_ms": round(duration_s * 1000, 3),
            "payload_bytes": self.payload_bytes,
            "request_id": self.request_id,
            "caller": self.caller,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
        }


current_call: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "current_call", default=None
)


def note_vendor(vendor: str, vendor_request_id: str = "") -> None:
    """Record the vendor side of the current call, if there is one."""
    record = current_call.get()
    if record is not None:
        record.vendor = vendor
        if vendor_request_id:
            record.vendor_request_id = vendor_request_id


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra`` fields are merged in at the top level."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        """UTC ISO 8601 with milliseconds; the part up to the second is formatted once per
        second, not once per line (``strftime`` was a visible share of the access log)."""
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # orjson: the access log writes one line per RPC; json.dumps was a visible share of
        # the gateway's CPU. Same keys and order; non-JSON values are written as str().
        return orjson.dumps(entry, default=str).decode("utf-8")


class TextFormatter(logging.Formatter):
    """Human-readable lines, with ``extra`` fields as key=value pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{k}={_text_value(v)}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        ]
        return " ".join([line, *extras]) if extras else line


_BARE_VALUE = re.compile(r"[A-Za-z0-9_.:/@+-]+")


def _text_value(value: Any) -> str:
    """A value as it is, when it cannot be mistaken for more fields; else a quoted JSON string
    (a request id ``x caller=admin`` must not add a second ``caller=`` to the line)."""
    text = str(value)
    if _BARE_VALUE.fullmatch(text):
        return text
    return orjson.dumps(text).decode("utf-8")


def configure(log_format: str = "json", level: str = "INFO") -> None:
    """Set up the root logger. Called once, by the command line entry point."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.Formatter.converter = time.gmtime
    # No line says which source line or thread it came from, so the logging module need not
    # find out: skipping its stack walk and thread lookups is most of the access log's cost
    # per RPC (the "Optimization" section of the logging HOWTO; bench/README.md).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
