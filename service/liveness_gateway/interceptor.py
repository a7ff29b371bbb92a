"""The server interceptor: request ids, grpc_server_* metrics and the access log line.

It wraps every method of every service (health and reflection included), once per method:
the wrapped handlers are cached, so a call costs a dict lookup, not a new handler.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from liveness_gateway import errors, tracing
from liveness_gateway.logs import REQUEST_ID_KEY, AccessLog, CallRecord, current_call
from liveness_gateway.metrics import Metrics

_MAX_REQUEST_ID_CHARS = 128

access_log = AccessLog()


def request_id_from(metadata: Any) -> str:
    """The caller's ``x-request-id`` if it is printable ASCII, else a new one (it is echoed in
    the trailers, where gRPC refuses anything else, after the vendor was already paid)."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str):
            if 0 < len(value) <= _MAX_REQUEST_ID_CHARS and value.isascii() and value.isprintable():
                return value
            break
    return secrets.token_hex(16)  # 32 hex digits like uuid4().hex, without building a UUID


class _Malformed:
    """A request protobuf refused, for the services whose deserializers are not ours
    (health, reflection): liveness.v1's own (wire.py) never raise."""


MALFORMED = _Malformed()
_OWN_DESERIALIZERS = "/liveness.v1."


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserializer``, with bytes it refuses turned into :data:`MALFORMED` instead of an
    exception that gRPC would log with a traceback: unauthenticated bytes must not be able
    to flood the log."""
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except DecodeError:
            return MALFORMED

    return deserialize


async def _refuse_malformed(record: CallRecord, context: grpc.aio.ServicerContext) -> None:
    failure = errors.invalid_request(
        [errors.FieldViolation("request", "is not a valid protobuf message for this method")]
    )
    record.reason = failure.reason
    status = rpc_status.to_status(failure.to_status())
    record.end_before_status(status.code)
    trailers = (*status.trailing_metadata, *record.response_metadata())
    await context.abort(status.code, status.details, trailers)


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, metrics: Metrics, *, traced: bool = False) -> None:
        """``traced``: the official OpenTelemetry interceptor runs outside this one, so a
        server span is current in the handler."""
        self._metrics = metrics
        self._traced = traced
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return None
        wrapped = self._wrap(method, handler)
        self._cache[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        deserializer = handler.request_deserializer
        if not method.startswith(_OWN_DESERIALIZERS):
            deserializer = _tolerant(deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, handler.stream_stream, streaming_requests=True),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client streaming: the gateway has none

    def _begin(self, method: str, context: grpc.aio.ServicerContext) -> CallRecord:
        self._metrics.rpc_started(method)
        record = CallRecord(method, request_id_from(context.invocation_metadata()), ender=self)
        if self._traced:
            tracing.note_ids(record)
        current_call.set(record)
        return record

    def end(self, record: CallRecord, code: grpc.StatusCode) -> None:
        """The call's metrics and access line, once (a failure may end it before its status
        is sent: :meth:`CallRecord.end_before_status`)."""
        if record.ended:
            return
        record.ended = True
        duration = time.perf_counter() - record.started
        exemplar = tracing.finish_server_span(record) if self._traced else None
        self._metrics.rpc_handled(record.method, code, duration, exemplar)
        record.code = code.name
        access_log.write(record.fields(duration))

    def _end_after_reply(self, record: CallRecord, code: grpc.StatusCode) -> None:
        """:meth:`end` for a handler that returned its response, which is not sent yet.

        The duration is taken now; the metrics and the access line are written by a callback
        on the event loop. grpc.aio sends the response in the same step in which the handler
        returns, so the callback runs right after the response left, and before the loop turns
        to anything that arrived meanwhile (the caller's next request, a scrape of /metrics).
        Written before the response, they were ~20% of the gateway's Python time per call on
        the way to it (bench/README.md). A failed call needs no such care: abort() has sent
        its status by the time the handler's exception reaches the wrapper.
        """
        duration = time.perf_counter() - record.started
        record.code = code.name
        # The server span is current only here, in the handler: its attributes are set now.
        exemplar = tracing.finish_server_span(record) if self._traced else None
        asyncio.get_running_loop().call_soon(self._account, record, code, duration, exemplar)

    def _account(
        self,
        record: CallRecord,
        code: grpc.StatusCode,
        duration: float,
        exemplar: dict[str, str] | None,
    ) -> None:
        self._metrics.rpc_handled(record.method, code, duration, exemplar)
        access_log.write(record.fields(duration))

    def _unary(self, method: str, behavior: Any) -> Any:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            record = self._begin(method, context)
            # In the trailers, not as early initial metadata: a separate initial-metadata
            # batch cost ~10% of the gateway's CPU per call (bench/README.md).
            context.set_trailing_metadata(record.response_metadata())
            try:
                if request is MALFORMED:
                    await _refuse_malformed(record, context)
                response = await behavior(request, context)
            except BaseException as exc:
                self.end(record, _failure_code(context, exc))
                raise
            self._end_after_reply(record, context.code() or grpc.StatusCode.OK)
            return response

        return wrapped

    def _streaming(self, method: str, behavior: Any, *, streaming_requests: bool = False) -> Any:
        # Servicers stream either as async generators or as coroutines calling
        # context.write(); the wrapper is a coroutine and writes in both cases.
        async def checked(requests: Any, record: CallRecord, context: Any) -> Any:
            async for request in requests:
                if request is MALFORMED:
                    await _refuse_malformed(record, context)
                yield request

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> None:
            record = self._begin(method, context)
            code = grpc.StatusCode.UNKNOWN
            try:
                if streaming_requests:
                    request = checked(request, record, context)
                elif request is MALFORMED:
                    await _refuse_malformed(record, context)
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        await context.write(response)
                else:
                    await result
                code = context.code() or grpc.StatusCode.OK
            except BaseException as exc:
                code = _failure_code(context, exc)
                raise
            finally:
                self.end(record, code)

        return wrapped


def _failure_code(context: grpc.aio.ServicerContext, exc: BaseException) -> grpc.StatusCode:
    code = context.code()
    if code is not None:
        return code
    if isinstance(exc, GeneratorExit | asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN
