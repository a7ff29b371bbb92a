"""Thin RPC handlers: validate -> vendor call -> response. No HTTP details here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

import grpc
from grpc_status import rpc_status
from liveness.v1 import liveness_pb2, liveness_pb2_grpc

from liveness_gateway import errors
from liveness_gateway.config import GatewayConfig, VendorConfig
from liveness_gateway.errors import GatewayError
from liveness_gateway.transport import VendorTransport
from liveness_gateway.validation import source_of
from liveness_gateway.vendors import accuauth, linkface
from liveness_gateway.vendors.base import VendorReply, VendorRequest

log = logging.getLogger(__name__)

Resp = TypeVar("Resp")


def verdict(score: float, threshold: float) -> liveness_pb2.Verdict.ValueType:
    """HACK when the score is above the threshold (the vendors' rule), LIVE otherwise."""
    return liveness_pb2.VERDICT_HACK if score > threshold else liveness_pb2.VERDICT_LIVE


class LivenessServicer(liveness_pb2_grpc.LivenessCheckServicer):
    """Maps each RPC onto its vendor endpoint."""

    def __init__(self, config: GatewayConfig, transport: VendorTransport) -> None:
        self._config = config
        self._transport = transport

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
        source = source_of(request)
        cfg = self._config.linkface
        reply = await self._send(linkface.build_upload(cfg, source), cfg, context)
        result = linkface.parse_upload(reply, self._config.secrets)
        return liveness_pb2.UploadResponse(
            liveness_data_id=result.liveness_data_id, vendor_request_id=result.request_id
        )

    async def _detect(
        self, request: liveness_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.DetectResponse:
        source = source_of(request)
        cfg = self._config.linkface
        reply = await self._send(linkface.build_detect(cfg, source), cfg, context)
        result = linkface.parse_detect(reply, self._config.secrets)
        threshold = self._config.detect_threshold
        return liveness_pb2.DetectResponse(
            score=result.score,
            verdict=verdict(result.score, threshold),
            threshold=threshold,
            liveness_data_id=result.liveness_data_id,
            vendor_request_id=result.request_id,
        )

    async def _anti_hack(
        self, request: liveness_pb2.AntiHackRequest, context: grpc.aio.ServicerContext
    ) -> liveness_pb2.AntiHackResponse:
        source = source_of(request)
        cfg = self._config.accuauth
        vendor_request = accuauth.build_anti_hack(
            cfg, source, return_image=request.return_image, return_extra=request.return_extra
        )
        reply = await self._send(vendor_request, cfg, context)
        result = accuauth.parse_anti_hack(reply, self._config.secrets)
        threshold = self._config.antihack_threshold
        response = liveness_pb2.AntiHackResponse(
            score=result.score,
            verdict=verdict(result.score, threshold),
            threshold=threshold,
            vendor_request_id=result.request_id,
        )
        if request.return_image and result.image is not None:
            response.image = result.image
        if request.return_extra and result.extra is not None:
            for name, value in result.extra.items():
                setattr(response.extra, name, value)
        return response

    async def _send(
        self,
        vendor_request: VendorRequest,
        cfg: VendorConfig,
        context: grpc.aio.ServicerContext,
    ) -> VendorReply:
        """The vendor call, bounded by the caller's deadline (less a margin) or the default."""
        timeout_s = cfg.timeout_s
        caller_bound = False
        remaining = context.time_remaining()
        if remaining is not None:
            budget = remaining - self._config.deadline_margin_s
            if budget <= 0:
                raise errors.deadline_exceeded(cfg.name)
            if budget < timeout_s:
                timeout_s, caller_bound = budget, True
        return await self._transport.send(
            vendor_request, timeout_s=timeout_s, caller_bound=caller_bound
        )


async def _boundary(context: grpc.aio.ServicerContext, flow: Awaitable[Resp]) -> Resp:
    """Where every failure becomes a well-formed status; nothing else reaches the caller."""
    try:
        return await flow
    except GatewayError as err:
        failure = err
    except Exception:
        log.exception("unexpected failure in RPC handler")
        failure = errors.internal()
    await context.abort_with_status(rpc_status.to_status(failure.to_status()))
    raise AssertionError("abort_with_status returned")  # pragma: no cover
