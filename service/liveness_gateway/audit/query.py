"""``liveness.audit.v1.AuditLog``: ListDecisions (AIP-132) and GetDecision.

The filter language (a small subset of AIP-160): terms joined by ``AND``, each
``field op value``. ``time`` takes ``<``, ``<=``, ``>``, ``>=`` (and ``=``) with an RFC 3339
timestamp; the text fields (:data:`TEXT_FIELDS`) take ``=`` and ``!=``. A value is a bare word
(letters, digits and ``_.:+-``) or a double-quoted string (``\\"`` and ``\\\\`` escapes).
Pages are read newest first; the page token is the position after the page's last decision
(keyset pagination, stable while records are added), bound to the filter it was made with.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import orjson
from google.protobuf import duration_pb2, timestamp_pb2
from grpc_status import rpc_status
from liveness.audit.v1 import audit_pb2, audit_pb2_grpc

from liveness_gateway import errors
from liveness_gateway.audit.record import Decision
from liveness_gateway.audit.store import Condition, Page, Store, StoreUnavailableError
from liveness_gateway.audit.trail import AUDIT_RETRY_DELAY_S
from liveness_gateway.auth import AUDIT_RPC, CallerAuth
from liveness_gateway.errors import FieldViolation, GatewayError
from liveness_gateway.logs import current_call

log = logging.getLogger(__name__)

SERVICE = audit_pb2.DESCRIPTOR.services_by_name["AuditLog"]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_FILTER_CHARS = 2048

TEXT_FIELDS = (
    "caller",
    "rpc",
    "vendor",
    "verdict",
    "code",
    "reason",
    "vendor_request_id",
    "request_id",
    "client_request_id",
    "liveness_data_id",
    "liveness_data_sha256",
)
_TIME_OPS = ("<", "<=", ">", ">=", "=")
_TEXT_OPS = ("=", "!=")
_TOKEN = re.compile(
    r'\s*(?:(?P<op><=|>=|!=|=|<|>)|(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<word>[A-Za-z0-9_.:+-]+))'
)

R = TypeVar("R")


def _bad(field: str, description: str) -> GatewayError:
    return errors.invalid_request([FieldViolation(field, description)])


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _bad("filter", f"unexpected character at position {pos + 1}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "quoted":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        pos = match.end()
    return tokens


def _timestamp_us(text: str) -> int:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise _bad("filter", f"time: {text!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise _bad("filter", f"time: {text!r} needs a time zone (Z or +hh:mm)")
    return int(moment.timestamp() * 1_000_000)


def parse_filter(text: str) -> tuple[Condition, ...]:
    """The conditions of a ListDecisions filter; INVALID_ARGUMENT (BadRequest) when bad."""
    if len(text) > MAX_FILTER_CHARS:
        raise _bad("filter", f"longer than {MAX_FILTER_CHARS} characters")
    tokens = _tokens(text)
    conditions: list[Condition] = []
    i = 0
    while i < len(tokens):
        if conditions:
            if tokens[i] != ("word", "AND"):
                raise _bad("filter", f"expected AND, found {tokens[i][1]!r}")
            i += 1
        if i + 3 > len(tokens):
            raise _bad("filter", "incomplete term: write field op value")
        (fkind, field), (okind, op), (vkind, value) = tokens[i : i + 3]
        i += 3
        if fkind != "word" or okind != "op" or vkind not in ("word", "quoted"):
            raise _bad("filter", f"{field!r}: a term is field op value")
        if field == "time":
            if op not in _TIME_OPS:
                raise _bad("filter", f"time takes {', '.join(_TIME_OPS)}")
            conditions.append(Condition("time_us", op, _timestamp_us(value)))
        elif field in TEXT_FIELDS:
            if op not in _TEXT_OPS:
                raise _bad("filter", f"{field} takes = or !=")
            conditions.append(Condition(field, "<>" if op == "!=" else "=", value))
        else:
            raise _bad("filter", f"unknown field {field!r}; known: time, {', '.join(TEXT_FIELDS)}")
    return tuple(conditions)


def _filter_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def page_token(last: Decision, filter_text: str) -> str:
    raw = orjson.dumps({"t": last.time_us, "i": last.id, "f": _filter_key(filter_text)})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def read_page_token(token: str, filter_text: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = orjson.loads(raw)
        position = (int(fields["t"]), str(fields["i"]))
        same_filter = fields["f"] == _filter_key(filter_text)
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise _bad("page_token", "not a page token this service gave") from None
    if not same_filter:
        raise _bad("page_token", "was made for another filter")
    return position


def _duration(micros: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=micros // 1_000_000, nanos=(micros % 1_000_000) * 1000)


def to_proto(decision: Decision) -> audit_pb2.Decision:
    message = audit_pb2.Decision(
        id=decision.id,
        decide_time=timestamp_pb2.Timestamp(
            seconds=decision.time_us // 1_000_000, nanos=(decision.time_us % 1_000_000) * 1000
        ),
        request_id=decision.request_id,
        client_request_id=decision.client_request_id,
        caller=decision.caller,
        rpc=decision.rpc,
        vendor=decision.vendor,
        vendor_endpoint=decision.vendor_endpoint,
        vendor_request_id=decision.vendor_request_id,
        liveness_data_id=decision.liveness_data_id,
        source=decision.source,
        liveness_data_sha256=decision.liveness_data_sha256,
        verdict=decision.verdict,
        code=decision.code,
        reason=decision.reason,
        attempts=decision.attempts,
        vendor_latency=_duration(decision.vendor_latency_us),
        total_latency=_duration(decision.total_latency_us),
        gateway_version=decision.gateway_version,
        host=decision.host,
    )
    if decision.score is not None:
        message.score = decision.score
    if decision.threshold is not None:
        message.threshold = decision.threshold
    return message


class AuditLogServicer(audit_pb2_grpc.AuditLogServicer):
    """Reads the store; callers need ``audit`` in their callers-file ``rpcs``."""

    def __init__(self, store: Store, auth: CallerAuth | None = None) -> None:
        self._store = store
        self._auth = auth

    async def ListDecisions(  # noqa: N802  (gRPC method names)
        self, request: audit_pb2.ListDecisionsRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListDecisionsResponse:
        return await self._guard(context, lambda: self._list(request))

    async def GetDecision(  # noqa: N802
        self, request: audit_pb2.GetDecisionRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetDecisionResponse:
        return await self._guard(context, lambda: self._get(request))

    async def _list(
        self, request: audit_pb2.ListDecisionsRequest
    ) -> audit_pb2.ListDecisionsResponse:
        if request.page_size < 0:
            raise _bad("page_size", "must not be negative")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        conditions = parse_filter(request.filter)
        after = read_page_token(request.page_token, request.filter) if request.page_token else None
        found = await self._store.list(Page(conditions, size + 1, after))
        response = audit_pb2.ListDecisionsResponse(decisions=[to_proto(d) for d in found[:size]])
        if len(found) > size:
            response.next_page_token = page_token(found[size - 1], request.filter)
        return response

    async def _get(self, request: audit_pb2.GetDecisionRequest) -> audit_pb2.GetDecisionResponse:
        if not request.id:
            raise _bad("id", "is required")
        found = await self._store.get(request.id)
        if found is None:
            raise GatewayError(
                grpc.StatusCode.NOT_FOUND,
                errors.DECISION_NOT_FOUND,
                "no decision has this id",
                violations=[FieldViolation("id", "no decision has this id")],
            )
        return audit_pb2.GetDecisionResponse(decision=to_proto(found))

    async def _guard(
        self, context: grpc.aio.ServicerContext, work: Callable[[], Awaitable[R]]
    ) -> R:
        failure: GatewayError
        record = current_call.get()
        try:
            if self._auth is not None:
                caller = await self._auth.admit(context, AUDIT_RPC)
                if record is not None:
                    record.caller = caller
            return await work()
        except GatewayError as err:
            failure = err
        except StoreUnavailableError as exc:
            log.warning("audit query: the store is unreachable (%s)", exc)
            failure = errors.audit_unavailable(AUDIT_RETRY_DELAY_S)
        except Exception:
            log.exception("unexpected failure in an audit query")
            failure = errors.internal()
        if record is not None:
            record.reason = failure.reason
        status = rpc_status.to_status(failure.to_status())
        if record is not None:  # before the caller can see the status
            record.end_before_status(status.code)
        extra: Any = record.response_metadata() if record is not None else ()
        await context.abort(status.code, status.details, (*status.trailing_metadata, *extra))
        raise AssertionError("abort returned")  # pragma: no cover


def add_to_server(servicer: AuditLogServicer, server: grpc.aio.Server) -> None:
    audit_pb2_grpc.add_AuditLogServicer_to_server(servicer, server)
