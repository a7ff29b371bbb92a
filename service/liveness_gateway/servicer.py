"""Thin RPC handlers: validate -> vendor call -> response. No HTTP details here."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from grpc_status import rpc_status
from liveness.v1 import liveness_pb2, liveness_pb2_grpc

from liveness_gateway import errors
from liveness_gateway.config import GatewayConfig, VendorConfig
from liveness_gateway.errors import GatewayError
from liveness_gateway.logs import current_call, note_vendor
from liveness_gateway.metrics import Metrics
from liveness_gateway.transport import VendorTransport
from liveness_gateway.validation import Source, source_of
from liveness_gateway.vendors import accuauth, linkface
from liveness_gateway.vendors.base import VendorReply, VendorRequest

log = logging.getLogger(__name__)

Resp = TypeVar("Resp")
Result = TypeVar("Result")

RPC_VENDORS = (("Upload", "linkface"), ("Detect", "linkface"), ("AntiHack", "accuauth"))
VENDOR_ENDPOINTS = {
    "linkface": (linkface.UPLOAD, linkface.DETECT),
    "accuauth": (accuauth.ANTI_HACK,),
}


def verdict(score: float, threshold: float) -> liveness_pb2.Verdict.ValueType:
    """HACK when the score is above the threshold (the vendors' rule), LIVE otherwise."""
    return liveness_pb2.VERDICT_HACK if score > threshold else liveness_pb2.VERDICT_LIVE


class LivenessServicer(liveness_pb2_grpc.LivenessCheckServicer):
    """Maps each RPC onto its vendor endpoint."""

    def __init__(self, config: GatewayConfig, transport: VendorTransport, metrics: Metrics) -> None:
        self._config = config
        self._transport = transport
        self._metrics = metrics

    async def Upload(  # noqa: N802  (gRPC method names)
        self, request: liveness_pb2.UploadRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.UploadResponse:
        return await _boundary(context, self._upload(request, context))

    async def Detect(  # noqa: N802
        self, request: liveness_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        return await _boundary(context, self._detect(request, context))

    async def AntiHack(  # noqa: N802
        self, request: liveness_pb2.AntiHackRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.AntiHackResponse:
        return await _boundary(context, self._anti_hack(request, context))

    # --- the three flows ---------------------------------------------------------------

    async def _upload(
        self, request: liveness_pb2.UploadRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.UploadResponse:
        source = self._source("Upload", request)
        cfg = self._config.linkface
        result = await self._call_vendor(
            linkface.build_upload(cfg, source), cfg, context, linkface.parse_upload
        )
        return liveness_pb2.UploadResponse(
            liveness_data_id=result.liveness_data_id, vendor_request_id=result.request_id
        )

    async def _detect(
        self, request: liveness_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        source = self._source("Detect", request)
        cfg = self._config.linkface
        result = await self._call_vendor(
            linkface.build_detect(cfg, source), cfg, context, linkface.parse_detect
        )
        threshold = self._config.detect_threshold
        decision = self._decide("Detect", cfg.name, result.score, threshold)
        return liveness_pb2.DetectResponse(
            score=result.score,
            verdict=decision,
            threshold=threshold,
            liveness_data_id=result.liveness_data_id,
            vendor_request_id=result.request_id,
        )

    async def _anti_hack(
        self, request: liveness_pb2.AntiHackRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.AntiHackResponse:
        source = self._source("AntiHack", request)
        cfg = self._config.accuauth
        vendor_request = accuauth.build_anti_hack(
            cfg, source, return_image=request.return_image, return_extra=request.return_extra
        )
        result = await self._call_vendor(vendor_request, cfg, context, accuauth.parse_anti_hack)
        threshold = self._config.antihack_threshold
        response = liveness_pb2.AntiHackResponse(
            score=result.score,
            verdict=self._decide("AntiHack", cfg.name, result.score, threshold),
            threshold=threshold,
            vendor_request_id=result.request_id,
        )
        if request.return_image and result.image is not None:
            response.image = result.image
        if request.return_extra and result.extra is not None:
            for name, value in result.extra.items():
                setattr(response.extra, name, value)
        return response

    # --- shared steps --------------------------------------------------------------------

    def _source(self, rpc: str, request: object) -> Source:
        source = source_of(request)  # type: ignore[arg-type]
        if source.kind == "data":
            self._metrics.payload(rpc, source.size)
            record = current_call.get()
            if record is not None:
                record.payload_bytes = source.size
        return source

    def _decide(
        self, rpc: str, vendor: str, score: float, threshold: float
    ) -> liveness_pb2.Verdict.ValueType:
        decision = verdict(score, threshold)
        self._metrics.decision(rpc, vendor, score, decision == liveness_pb2.VERDICT_HACK)
        return decision

    async def _call_vendor(
        self,
        vendor_request: VendorRequest,
        cfg: VendorConfig,
        context: grpc.aio.ServicerContext,
        parse: Callable[[VendorReply, tuple[str, ...]], Result],
    ) -> Result:
        """Send, parse, and account for one vendor exchange."""
        note_vendor(cfg.name)
        timeout_s, caller_bound = self._timeout(cfg, context)
        in_flight = self._metrics.in_flight(cfg.name, vendor_request.endpoint)
        started = time.perf_counter()
        failure: GatewayError | None = None
        in_flight.inc()
        try:
            reply = await self._transport.send(
                vendor_request, timeout_s=timeout_s, caller_bound=caller_bound
            )
            result = parse(reply, self._config.secrets)
            note_vendor(cfg.name, getattr(result, "request_id", ""))
            return result
        except GatewayError as err:
            failure = err
            note_vendor(cfg.name, err.vendor_request_id or "")
            raise
        finally:
            in_flight.dec()
            self._metrics.vendor_call(
                cfg.name, vendor_request.endpoint, time.perf_counter() - started, failure
            )

    def _timeout(self, cfg: VendorConfig, context: grpc.aio.ServicerContext) -> tuple[float, bool]:
        """The vendor call's budget: the caller's deadline less a margin, or the default."""
        remaining = context.time_remaining()
        if remaining is not None:
            budget = remaining - self._config.deadline_margin_s
            if budget <= 0:
                raise errors.deadline_exceeded(cfg.name)
            if budget < cfg.timeout_s:
                return budget, True
        return cfg.timeout_s, False


async def _boundary(context: grpc.aio.ServicerContext, flow: Awaitable[Resp]) -> Resp:
    """Where every failure becomes a well-formed status; nothing else reaches the caller."""
    try:
        return await flow
    except GatewayError as err:
        failure = err
    except Exception:
        log.exception("unexpected failure in RPC handler")
        failure = errors.internal()
    record = current_call.get()
    if record is not None:
        record.reason = failure.reason
    await context.abort_with_status(rpc_status.to_status(failure.to_status()))
    raise AssertionError("abort_with_status returned")  # pragma: no cover
