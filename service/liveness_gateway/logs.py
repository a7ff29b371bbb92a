"""Logging: one structured line per RPC, JSON by default, configured only at the entry point.

The per-RPC facts are gathered in a :class:`CallRecord` that lives in a context variable for
the duration of the call: the interceptor opens it, the servicer adds the vendor's side.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import orjson

ACCESS_LOGGER = "liveness_gateway.access"
REQUEST_ID_KEY = "x-request-id"

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class CallEnd(Protocol):
    """Writes a call's metrics and access line: the server interceptor."""

    def end(self, record: CallRecord, code: Any) -> None: ...


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
    ender: CallEnd | None = field(default=None, repr=False, compare=False)
    """Who writes the call's metrics and access line (set by the interceptor)."""
    ended: bool = False

    def end_before_status(self, code: Any) -> None:
        """Write the call's metrics and access line now, before a failure's status is sent
        (``abort()``): whoever has seen the status can already see them (a scrape, a log
        reader). The interceptor then does not write them again."""
        if self.ender is not None:
            self.ender.end(self, code)

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

    def format(self, record: logging.LogRecord) -> str:
        extra = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        }
        if record.exc_info:
            extra["exc"] = self.formatException(record.exc_info)
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.process,
            record.getMessage(),
            extra,
        )

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        pid: int | None,
        message: str,
        extra: dict[str, Any],
    ) -> str:
        """The JSON text of one line: the standard keys, then ``extra`` in its order."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        entry: dict[str, Any] = {
            "ts": f"{self._second_text}.{int((created - second) * 1000):03d}Z",
            "level": level,
            "logger": logger,
            "pid": pid,
            "msg": message,
            **extra,
        }
        # orjson: the access log writes one line per RPC; json.dumps was a visible share of
        # the gateway's CPU. Same keys and order; non-JSON values are written as str().
        return orjson.dumps(entry, default=str).decode("utf-8")


class JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs for JSON lines; :class:`AccessLog` writes to it
    directly."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.formatter_json = JsonFormatter()
        self.setFormatter(self.formatter_json)

    def write_line(self, logger: str, message: str, extra: dict[str, Any]) -> None:
        """What ``emit`` does with an INFO record of ``logger``, without building the record."""
        try:
            text = self.formatter_json.line(
                time.time(), "INFO", logger, os.getpid(), message, extra
            )
            with self.lock:  # type: ignore[union-attr]
                self.stream.write(text + self.terminator)
                self.flush()
        except Exception:
            record = logging.makeLogRecord({"name": logger, "msg": message, **extra})
            self.handleError(record)


class AccessLog:
    """The access line: one per RPC, ``msg`` "rpc", the call's fields at the top level.

    Written as ``logging.getLogger(ACCESS_LOGGER).info("rpc", extra=fields)`` would write it.
    When the only handler that would see it is the :class:`JsonHandler` of :func:`configure`
    (the deployed set-up), the line goes to that handler directly: the same text, without a
    ``LogRecord``, the logger hierarchy walk and the per-record attribute scan, which were
    most of the line's cost (~20 µs per call in-process; bench/README.md). Any other set-up
    (a capture handler in tests, filters, handlers of one's own, the text format) gets the
    record through the logging module as usual.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger(ACCESS_LOGGER)

    def write(self, fields: dict[str, Any]) -> None:
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = self._direct()
        if handler is None:
            logger.info("rpc", extra=fields)
        else:
            handler.write_line(ACCESS_LOGGER, "rpc", fields)

    def _direct(self) -> JsonHandler | None:
        """The JSON handler, when the access line would reach it alone, unfiltered."""
        root = logging.root
        if len(root.handlers) != 1:
            return None
        handler = root.handlers[0]
        if (
            type(handler) is not JsonHandler
            or handler.formatter is not handler.formatter_json  # someone set their own
            or handler.filters
            or handler.level > logging.INFO
        ):
            return None
        logger: logging.Logger | None = self._logger
        if logger is not None and logger.filters:
            return None
        while logger is not None and logger is not root:
            if logger.handlers or not logger.propagate:
                return None
            logger = logger.parent
        return handler


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
    handler: logging.Handler
    if log_format == "json":
        handler = JsonHandler(sys.stderr)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter())
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
