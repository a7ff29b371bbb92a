"""The access line: the deployed JSON handler gets it directly, anything else via logging."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

from liveness_gateway import logs
from liveness_gateway.logs import ACCESS_LOGGER, AccessLog, CallRecord, JsonHandler


@contextlib.contextmanager
def _json_logging() -> Iterator[io.StringIO]:
    """``logs.configure("json")`` as the entry point runs it, into a buffer; undone after.
    Entered in the test's body: pytest adds its own capture handlers around each phase."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("json", "INFO")
    (handler,) = root.handlers
    assert isinstance(handler, JsonHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def _fields() -> dict[str, object]:
    record = CallRecord("/liveness.v1.LivenessCheck/Detect", 'id "quoted" \u00e9')
    record.vendor, record.payload_bytes, record.code = "linkface", 1024, "INVALID_ARGUMENT"
    return record.fields(0.0123456)


def test_direct_line_is_the_line_logging_writes() -> None:
    access_log = AccessLog()
    with _json_logging() as out:
        assert access_log._direct() is logging.getLogger().handlers[0], "not the direct path"
        access_log.write(_fields())
        logging.getLogger(ACCESS_LOGGER).info("rpc", extra=_fields())
    direct, through_logging = (json.loads(line) for line in out.getvalue().splitlines())
    assert list(direct) == list(through_logging)  # same keys, same order
    assert direct.pop("ts").endswith("Z")
    assert through_logging.pop("ts").endswith("Z")
    assert direct == through_logging
    assert direct["request_id"] == 'id "quoted" \u00e9'
    assert direct["duration_ms"] == 12.346
    assert direct["level"] == "INFO"
    assert direct["logger"] == ACCESS_LOGGER


def test_other_handlers_get_a_record() -> None:
    """A second handler (a test's capture, an operator's own) sees the line as a record, and
    the JSON handler still writes it once."""
    seen: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    with _json_logging() as out:
        logging.getLogger().addHandler(Capture())
        AccessLog().write(_fields())
    (record,) = seen
    assert record.name == ACCESS_LOGGER
    assert record.getMessage() == "rpc"
    assert record.__dict__["payload_bytes"] == 1024
    assert len(out.getvalue().splitlines()) == 1


def test_filters_and_levels_are_honoured() -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    dropped = logging.Filter("nothing.matches")
    with _json_logging() as out:
        access.setLevel(logging.WARNING)
        try:
            AccessLog().write(_fields())
        finally:
            access.setLevel(logging.NOTSET)
        assert out.getvalue() == ""
        access.addFilter(dropped)
        try:
            AccessLog().write(_fields())
        finally:
            access.removeFilter(dropped)
        assert out.getvalue() == "", "a logger filter must still apply"
        AccessLog().write(_fields())
        assert len(out.getvalue().splitlines()) == 1
        # an operator's own formatter on the installed handler is used, not bypassed
        (handler,) = logging.getLogger().handlers
        handler.setFormatter(logging.Formatter("own %(name)s %(message)s"))
        AccessLog().write(_fields())
    assert out.getvalue().splitlines()[1] == f"own {ACCESS_LOGGER} rpc"
