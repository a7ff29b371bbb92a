"""Idempotent calls (AIP-155) and Upload content dedupe, around the servicer's flows.

A request_id (a UUID, canonical 36-character form, either case) names a call per caller:
the key is (caller, request_id), the fingerprint the RPC and the SHA-256 of its input (the
liveness data, the url or id, every flag; the request_id itself left out). The first call
claims the key (``SET NX`` in Redis: fleet-wide), calls the vendor and records its outcome for
``--idempotency-ttl``; a resend with the same fingerprint gets that outcome without a vendor
call, and one that arrives while the first is still running waits for it (single flight),
within its own deadline. Another fingerprint under the same key is REQUEST_ID_REUSED.

What is recorded: every success, and the errors that are the vendor's verdict on this input
(INVALID_ARGUMENT-class replies: the same input can only get the same answer), plus
RESPONSE_TOO_LARGE (the vendor was called). Everything transient, or decided before any
vendor call, is not recorded: the claim is released and a resend runs afresh (OVERLOADED,
rate limits and quotas, CIRCUIT_OPEN, STATE_UNAVAILABLE, timeouts and unreachable vendors,
DEADLINE_EXCEEDED, INTERNAL, validation errors). A resend after a timeout may therefore reach
the vendor again: the gateway cannot know whether the first attempt was stored.

Upload dedupe: the same caller uploading the same bytes (SHA-256) within
``--upload-dedupe-ttl`` gets the liveness_data_id of the first upload without a vendor call.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from liveness.v1 import liveness_pb2

from liveness_gateway import errors
from liveness_gateway.config import StateConfig
from liveness_gateway.errors import FieldViolation, GatewayError
from liveness_gateway.metrics import Metrics
from liveness_gateway.state import Records
from liveness_gateway.wire import Received

UPLOAD = "Upload"
RESPONSES: dict[str, type[Message]] = {
    "Upload": liveness_pb2.UploadResponse,
    "Detect": liveness_pb2.DetectResponse,
    "AntiHack": liveness_pb2.AntiHackResponse,
}
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_PENDING, _DONE = b"P", b"D"
_OK, _ERROR = b"R", b"E"
_FP_BYTES = 32
_NO_DEADLINE_LEASE_S = 120.0
"""How long a claim lives when the caller set no deadline (vendor timeouts and retries fit)."""
_LEASE_MARGIN_S = 1.0
_HASH_IN_THREAD_BYTES = 1024 * 1024
"""Larger payloads are hashed off the event loop (hashlib releases the GIL)."""

Flow = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def request_id_violation() -> FieldViolation:
    return FieldViolation(
        errors.REQUEST_ID_FIELD,
        "must be a UUID in its canonical 36-character form "
        "(8-4-4-4-12 hexadecimal digits), or empty",
    )


def recorded(err: GatewayError) -> bool:
    """Is this error the vendor's verdict on the input, replayed to a resend?"""
    if err.reason == errors.RESPONSE_TOO_LARGE:
        return True
    return err.http_status is not None and err.code == grpc.StatusCode.INVALID_ARGUMENT


class Idempotency:
    """The wrapper around one RPC's flow; a call without request_id (and not an Upload of
    bytes with dedupe on) goes straight through."""

    def __init__(self, records: Records, config: StateConfig, metrics: Metrics) -> None:
        self._records = records
        self._ttl_s = config.idempotency_ttl_s
        self._dedupe_ttl_s = config.upload_dedupe_ttl_s
        self._metrics = metrics

    async def run(
        self,
        rpc: str,
        caller: str,
        flow: Flow,
        request: Any,
        context: grpc.aio.ServicerContext,
    ) -> Any:
        request_id: str = request.message.request_id
        dedupe = self._dedupe_ttl_s > 0 and rpc == UPLOAD and request.liveness_data is not None
        if not request_id and not dedupe:
            return await flow(request, context)
        if request_id and not _UUID_RE.fullmatch(request_id):
            raise errors.invalid_request([request_id_violation()])
        data_digest = await _digest(request.liveness_data)
        if not request_id and data_digest is not None:
            return await self._deduped(caller, flow, request, context, data_digest)
        key = f"idem:{caller}:{request_id.lower()}"
        fingerprint = _fingerprint(rpc, request, data_digest)
        pending = _PENDING + fingerprint + os.urandom(16)
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + float(remaining)
        lease_s = (_NO_DEADLINE_LEASE_S if remaining is None else float(remaining)) + (
            _LEASE_MARGIN_S
        )
        while True:
            held = await self._records.claim(key, pending, min(lease_s, self._ttl_s))
            if held is None:
                break
            if held[1 : 1 + _FP_BYTES] != fingerprint:
                raise errors.request_id_reused(rpc)
            if held[:1] == _DONE:
                self._metrics.replayed(rpc)
                return _replay(rpc, held[1 + _FP_BYTES :])
            # Another call with this key is running: wait for its outcome, within our deadline.
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise errors.deadline_exceeded()
            await self._records.changed(key, lease_s if left is None else left)
        return await self._lead(
            key, pending, fingerprint, rpc, caller, flow, request, context, data_digest
        )

    async def _lead(
        self,
        key: str,
        pending: bytes,
        fingerprint: bytes,
        rpc: str,
        caller: str,
        flow: Flow,
        request: Any,
        context: grpc.aio.ServicerContext,
        data_digest: bytes | None,
    ) -> Any:
        prefix = _DONE + fingerprint
        try:
            if self._dedupe_ttl_s > 0 and rpc == UPLOAD and data_digest is not None:
                response = await self._deduped(caller, flow, request, context, data_digest)
            else:
                response = await flow(request, context)
        except GatewayError as err:
            if recorded(err):
                status = err.to_status().SerializeToString()
                await self._records.put(key, prefix + _ERROR + status, self._ttl_s)
            else:
                await self._records.release(key, pending)
            raise
        except BaseException:
            await asyncio.shield(self._records.release(key, pending))
            raise
        await self._records.put(key, prefix + _OK + response.SerializeToString(), self._ttl_s)
        return response

    async def _deduped(
        self,
        caller: str,
        flow: Flow,
        request: Any,
        context: grpc.aio.ServicerContext,
        data_digest: bytes,
    ) -> Any:
        key = f"dedupe:{caller}:{data_digest.hex()}"
        cached = await self._records.get(key)
        if cached is not None:
            self._metrics.dedupe_hit(UPLOAD)
            return liveness_pb2.UploadResponse.FromString(cached)
        response = await flow(request, context)
        await self._records.put(key, response.SerializeToString(), self._dedupe_ttl_s)
        return response


async def _digest(data: memoryview | None) -> bytes | None:
    if data is None:
        return None
    if len(data) > _HASH_IN_THREAD_BYTES:
        return await asyncio.to_thread(lambda: hashlib.sha256(data).digest())
    return hashlib.sha256(data).digest()


def _fingerprint(rpc: str, request: Received[Any], data_digest: bytes | None) -> bytes:
    """SHA-256 of the RPC, the request's fields but request_id, and the data's digest."""
    message = request.message
    request_id = message.request_id
    message.ClearField("request_id")
    try:
        fields = message.SerializeToString(deterministic=True)
    finally:
        message.request_id = request_id
    digest = hashlib.sha256(rpc.encode("ascii") + b"\0")
    digest.update(len(fields).to_bytes(4, "big") + fields)
    digest.update(data_digest or b"-")
    return digest.digest()


def _replay(rpc: str, outcome: bytes) -> Any:
    kind, body = outcome[:1], outcome[1:]
    if kind == _OK:
        return RESPONSES[rpc].FromString(body)
    raise errors.replayed(status_pb2.Status.FromString(body))


__all__ = ["Idempotency", "recorded", "request_id_violation"]
