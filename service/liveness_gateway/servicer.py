"""Thin RPC handlers: validate -> vendor call -> response. No HTTP details here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc_status import rpc_status
from liveness.v1 import liveness_pb2

from liveness_gateway import errors
from liveness_gateway.audit.trail import AuditTrail
from liveness_gateway.auth import ANONYMOUS, CallerAuth
from liveness_gateway.concurrency import FixedLimiter
from liveness_gateway.config import MAX_GRPC_MESSAGE_BYTES, GatewayConfig
from liveness_gateway.errors import GatewayError
from liveness_gateway.logs import current_call
from liveness_gateway.metrics import Metrics
from liveness_gateway.state import StateStore
from liveness_gateway.state.idempotency import Idempotency
from liveness_gateway.state.local import LocalStore
from liveness_gateway.upstream import Upstream
from liveness_gateway.validation import Source, source_of
from liveness_gateway.vendors import accuauth, linkface
from liveness_gateway.vendors.base import NO_OPTIONS, CallOptions, Endpoint
from liveness_gateway.wire import Received

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Result = TypeVar("Result")

_IMAGE_SIZE_CHECK_BYTES = MAX_GRPC_MESSAGE_BYTES - 64 * 1024
"""An image this large may push the response past the gRPC limit: measure it first."""


def verdict(score: float, threshold: float, band: float = 0.0) -> liveness_pb2.Verdict.ValueType:
    """HACK when the score is above the threshold (the vendors' rule), LIVE otherwise; REVIEW
    when an operator's band is set and the score lies within it of the threshold."""
    if band > 0 and abs(score - threshold) <= band:
        return liveness_pb2.VERDICT_REVIEW
    return liveness_pb2.VERDICT_HACK if score > threshold else liveness_pb2.VERDICT_LIVE


_VERDICT_NAMES = {
    liveness_pb2.VERDICT_LIVE: "live",
    liveness_pb2.VERDICT_HACK: "hack",
    liveness_pb2.VERDICT_REVIEW: "review",
}


def _pushback_ms(failure: GatewayError, context: grpc.aio.ServicerContext) -> int:
    """The failure's retry advice, or -1 when the advised delay outlasts the caller's
    deadline: a resend could not start in time, so the caller gets the reason now."""
    advised = failure.retry_pushback_ms
    remaining = context.time_remaining()
    if advised >= 0 and remaining is not None and advised / 1000 >= float(remaining):
        return -1
    return advised


class LivenessServicer:
    """Maps each RPC onto its vendor endpoint.

    Registered by :func:`liveness_gateway.wire.add_to_server`, so each request arrives as a
    :class:`~liveness_gateway.wire.Received` (the liveness data as a view, not a copy).
    """

    def __init__(
        self,
        config: GatewayConfig,
        upstream: Upstream,
        metrics: Metrics,
        auth: CallerAuth | None = None,
        store: StateStore | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        """``audit``: the decision audit trail (None: off, no work per call)."""
        self._audit = audit
        self._config = config
        self._upstream = upstream
        self._metrics = metrics
        self._auth = auth
        records = (store if store is not None else LocalStore()).records
        self._idempotency = Idempotency(records, config.state, metrics)
        self._rpcs = FixedLimiter(config.resilience.max_in_flight_rpcs)

    async def Upload(  # noqa: N802  (gRPC method names)
        self, request: Received[liveness_pb2.UploadRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.UploadResponse:
        return await self._boundary(context, "Upload", self._upload, request)

    async def Detect(  # noqa: N802
        self, request: Received[liveness_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        return await self._boundary(context, "Detect", self._detect, request)

    async def AntiHack(  # noqa: N802
        self, request: Received[liveness_pb2.AntiHackRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.AntiHackResponse:
        return await self._boundary(context, "AntiHack", self._anti_hack, request)

    # --- the three flows ---------------------------------------------------------------

    async def _upload(
        self, request: Received[liveness_pb2.UploadRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.UploadResponse:
        result = await self._call(linkface.UPLOAD, request, context)
        return liveness_pb2.UploadResponse(
            liveness_data_id=result.liveness_data_id, vendor_request_id=result.request_id
        )

    async def _detect(
        self, request: Received[liveness_pb2.DetectRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        result = await self._call(linkface.DETECT, request, context)
        threshold = self._config.detect_threshold
        band = self._config.detect_review_band
        return liveness_pb2.DetectResponse(
            score=result.score,
            verdict=self._decide(linkface.DETECT, result.score, threshold, band),
            threshold=threshold,
            liveness_data_id=result.liveness_data_id,
            vendor_request_id=result.request_id,
        )

    async def _anti_hack(
        self, request: Received[liveness_pb2.AntiHackRequest], context: grpc.aio.ServicerContext
    ) -> liveness_pb2.AntiHackResponse:
        endpoint = accuauth.ANTI_HACK
        asked = request.message
        options = CallOptions(return_image=asked.return_image, return_extra=asked.return_extra)
        result = await self._call(endpoint, request, context, options)
        threshold = self._config.antihack_threshold
        band = self._config.antihack_review_band
        response = liveness_pb2.AntiHackResponse(
            score=result.score,
            verdict=self._decide(endpoint, result.score, threshold, band),
            threshold=threshold,
            vendor_request_id=result.request_id,
        )
        if result.image_dropped is not None:
            self._metrics.image_dropped(endpoint.vendor, result.image_dropped)
        if result.image is not None:
            response.image = result.image
            if len(result.image) > _IMAGE_SIZE_CHECK_BYTES:
                size = response.ByteSize()
                if size > MAX_GRPC_MESSAGE_BYTES:
                    raise errors.response_too_large(size, MAX_GRPC_MESSAGE_BYTES)
        if result.extra is not None:
            for name, value in result.extra.items():
                setattr(response.extra, name, value)
        return response

    # --- shared steps --------------------------------------------------------------------

    async def _admit(self, context: grpc.aio.ServicerContext, rpc: str) -> str:
        if self._auth is None:
            return ANONYMOUS
        return await self._auth.admit(context, rpc)

    async def _call(
        self,
        endpoint: Endpoint[Result],
        request: Received[Any],
        context: grpc.aio.ServicerContext,
        options: CallOptions = NO_OPTIONS,
    ) -> Result:
        """Validate, build the vendor request and send it within the caller's deadline."""
        source = self._source(endpoint.rpc, request)
        remaining = context.time_remaining()
        deadline = self._upstream.deadline(None if remaining is None else float(remaining))
        vendor_request = endpoint.build(self._config.vendor(endpoint.vendor), source, options)
        return await self._upstream.call(endpoint, vendor_request, deadline)

    def _source(self, rpc: str, request: Received[Any]) -> Source:
        source = source_of(request, url_allow_hosts=self._config.url_allow_hosts)
        if source.kind == "data":
            self._metrics.payload(rpc, source.size)
            record = current_call.get()
            if record is not None:
                record.payload_bytes = source.size
        return source

    def _decide(
        self, endpoint: Endpoint[Any], score: float, threshold: float, band: float
    ) -> liveness_pb2.Verdict.ValueType:
        decision = verdict(score, threshold, band)
        name = _VERDICT_NAMES[decision]
        self._metrics.decision(endpoint.rpc, endpoint.vendor, score, name)
        record = current_call.get()
        if record is not None:
            record.verdict = name
        return decision

    async def _boundary(
        self,
        context: grpc.aio.ServicerContext,
        rpc: str,
        flow: Callable[[Req, grpc.aio.ServicerContext], Awaitable[Resp]],
        request: Req,
    ) -> Resp:
        """Where every failure becomes a well-formed status; nothing else reaches the caller.

        Order: who is calling (and within its share?), is there room, then the flow.
        """
        failure: GatewayError
        record = current_call.get()
        audit = self._audit
        draft = audit.begin(rpc, request) if audit is not None else None
        try:
            caller = await self._admit(context, rpc)
            if record is not None:
                record.caller = caller
            if not self._rpcs.try_acquire():
                self._metrics.shed_call("max_in_flight")
                raise errors.overloaded(
                    "too many calls in flight", self._config.resilience.shed_retry_after_s
                )
            self._metrics.rpcs_in_flight.inc()
            try:
                if draft is not None and audit is not None:
                    audit.admit(draft)  # room for the record, before the vendor is called
                # request_id replays and Upload dedupe (state/idempotency.py)
                response: Resp = await self._idempotency.run(rpc, caller, flow, request, context)
            finally:
                self._rpcs.release()
                self._metrics.rpcs_in_flight.dec()
            if draft is not None and audit is not None:
                await audit.succeeded(draft, record, response)  # strict: once it is durable
            return response
        except GatewayError as err:
            failure = err
        except asyncio.CancelledError:
            if draft is not None and audit is not None:
                audit.cancelled(draft, record)
            raise
        except Exception:
            log.exception("unexpected failure in RPC handler")
            failure = errors.internal()
        if draft is not None and audit is not None:
            failure = await audit.failed(draft, record, failure)
        if record is not None:
            record.reason = failure.reason
        status = rpc_status.to_status(failure.to_status())
        if record is not None:  # before the caller can see the status
            record.end_before_status(status.code)
        # abort() replaces the trailers set so far: keep the request id beside the details,
        # and tell gRFC A6 clients whether (and after what delay) to resend.
        extra = record.response_metadata() if record is not None else ()
        pushback = ((errors.RETRY_PUSHBACK_KEY, str(_pushback_ms(failure, context))),)
        await context.abort(
            status.code, status.details, (*status.trailing_metadata, *extra, *pushback)
        )
        raise AssertionError("abort returned")  # pragma: no cover
