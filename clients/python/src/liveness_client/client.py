"""The async and sync clients: one request builder, one error conversion, two transports."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from liveness_client._proto.liveness.v1 import liveness_pb2 as pb
from liveness_client._proto.liveness.v1 import liveness_pb2_grpc
from liveness_client.channel import (
    DEFAULT_TARGET,
    DEFAULT_TIMEOUT_S,
    TLSConfig,
    call_metadata,
    channel_options,
)
from liveness_client.exceptions import from_grpc_error, request_id_from
from liveness_client.idempotency import with_idempotency_key
from liveness_client.results import AntiHackResult, DetectResult, UploadResult

Metadata = Sequence[tuple[str, str]]


def _one_source(**sources: Any) -> dict[str, Any]:
    given = {name: value for name, value in sources.items() if value is not None}
    if len(given) != 1:
        names = ", ".join(sources)
        raise ValueError(f"exactly one of {names} is required, got {len(given)}")
    return given


def upload_request(
    data: bytes | None = None, *, url: str | None = None, request: pb.UploadRequest | None = None
) -> pb.UploadRequest:
    ((field, value),) = _one_source(data=data, url=url, request=request).items()
    if field == "request":
        return request  # type: ignore[return-value]
    return pb.UploadRequest(**{{"data": "liveness_data", "url": "liveness_data_url"}[field]: value})


def detect_request(
    data: bytes | None = None,
    *,
    url: str | None = None,
    liveness_data_id: str | None = None,
    request: pb.DetectRequest | None = None,
) -> pb.DetectRequest:
    sources = _one_source(data=data, url=url, liveness_data_id=liveness_data_id, request=request)
    ((field, value),) = sources.items()
    if field == "request":
        return request  # type: ignore[return-value]
    names = {"data": "liveness_data", "url": "liveness_data_url"}
    return pb.DetectRequest(**{names.get(field, field): value})


def anti_hack_request(
    data: bytes | None = None,
    *,
    image_id: str | None = None,
    return_image: bool = False,
    return_extra: bool = False,
    request: pb.AntiHackRequest | None = None,
) -> pb.AntiHackRequest:
    ((field, value),) = _one_source(data=data, image_id=image_id, request=request).items()
    if field == "request":
        return request  # type: ignore[return-value]
    return pb.AntiHackRequest(
        **{"liveness_data" if field == "data" else field: value},
        return_image=return_image,
        return_extra=return_extra,
    )


def _health_name(status: int) -> str:
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


class _Settings:
    """What both clients keep per instance: the deadline and the per-call metadata."""

    def __init__(self, timeout: float | None, auth_token: str | None) -> None:
        self.timeout = timeout
        self.auth_token = auth_token

    def call_kwargs(
        self, timeout: float | None, request_id: str | None, metadata: Metadata
    ) -> tuple[dict[str, Any], str]:
        """The call's ``timeout`` and ``metadata``, and the request id sent in the metadata."""
        sent = call_metadata(auth_token=self.auth_token, request_id=request_id, extra=metadata)
        kwargs = {"timeout": self.timeout if timeout is None else timeout, "metadata": sent}
        return kwargs, sent[0][1]


class AsyncLivenessClient:
    """An asyncio client for ``liveness.v1.LivenessCheck``.

    ``timeout`` is the default deadline of every call in seconds (20 s, the service config's;
    None: the service config's);
    ``tls`` switches to a secure channel (with ``certificate_chain``/``private_key`` for
    mTLS); ``auth_token`` is sent as ``authorization: Bearer ...`` on every call; ``options``
    add or override channel options. Pass ``channel`` to use a channel of your own instead
    (the client then leaves closing it to you).
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        tls: TLSConfig | None = None,
        auth_token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        if channel is None:
            opts = channel_options(options)
            channel = (
                grpc.aio.secure_channel(target, tls.credentials(), options=opts)
                if tls is not None
                else grpc.aio.insecure_channel(target, options=opts)
            )
            self._owns_channel = True
        else:
            self._owns_channel = False
        self.target = target
        self._channel: grpc.aio.Channel = channel
        self._stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._settings = _Settings(timeout, auth_token)

    async def upload(
        self,
        data: bytes | None = None,
        *,
        url: str | None = None,
        request: pb.UploadRequest | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Metadata = (),
    ) -> UploadResult:
        """Store liveness data (bytes, a url, or a whole ``UploadRequest``) at the vendor.

        Sent with ``idempotency_key`` (or the request's ``request_id``), else with a fresh UUID
        made for this call; the result and any exception carry it as ``idempotency_key``."""
        message, key = with_idempotency_key(
            upload_request(data, url=url, request=request),
            idempotency_key,
            generate=True,
            owned=request is None,
        )
        reply, rid = await self._call(
            self._stub.Upload, message, timeout, request_id, metadata, key
        )
        return UploadResult.from_proto(reply, rid, key)

    async def detect(
        self,
        data: bytes | None = None,
        *,
        url: str | None = None,
        liveness_data_id: str | None = None,
        request: pb.DetectRequest | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Metadata = (),
    ) -> DetectResult:
        """Score liveness data with LinkFace: exactly one of bytes, a url, an Upload id, or a
        whole ``DetectRequest`` (sent as it is, for the gateway to validate). An
        ``idempotency_key`` is sent only when given (or set in the request)."""
        message, key = with_idempotency_key(
            detect_request(data, url=url, liveness_data_id=liveness_data_id, request=request),
            idempotency_key,
            generate=False,
            owned=request is None,
        )
        reply, rid = await self._call(
            self._stub.Detect, message, timeout, request_id, metadata, key
        )
        return DetectResult.from_proto(reply, rid, key)

    async def anti_hack(
        self,
        data: bytes | None = None,
        *,
        image_id: str | None = None,
        return_image: bool = False,
        return_extra: bool = False,
        request: pb.AntiHackRequest | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Metadata = (),
    ) -> AntiHackResult:
        """Score liveness data with AccuAuth: bytes, an H5 ``image_id``, or a whole
        ``AntiHackRequest`` (its own ``return_*`` flags then apply). An ``idempotency_key`` is
        sent only when given (or set in the request)."""
        message, key = with_idempotency_key(
            anti_hack_request(
                data,
                image_id=image_id,
                return_image=return_image,
                return_extra=return_extra,
                request=request,
            ),
            idempotency_key,
            generate=False,
            owned=request is None,
        )
        reply, rid = await self._call(
            self._stub.AntiHack, message, timeout, request_id, metadata, key
        )
        return AntiHackResult.from_proto(reply, rid, key)

    async def health(
        self, service: str = "", *, timeout: float | None = None, request_id: str | None = None
    ) -> str:
        """The ``grpc.health.v1`` status of ``service`` ("" is the whole server): "SERVING"..."""
        request = health_pb2.HealthCheckRequest(service=service)
        reply, _ = await self._call(self._health.Check, request, timeout, request_id, ())
        return _health_name(reply.status)

    async def _call(
        self,
        method: Any,  # the stub's grpc.aio.UnaryUnaryMultiCallable
        request: Message,
        timeout: float | None,
        request_id: str | None,
        metadata: Metadata,
        idempotency_key: str = "",
    ) -> tuple[Any, str]:
        """The reply and the gateway's request id (from the trailers), or the exception (which
        carries ``idempotency_key``, the request's ``request_id``)."""
        kwargs, sent = self._settings.call_kwargs(timeout, request_id, metadata)
        call = method(request, **kwargs)
        try:
            reply = await call
        except grpc.RpcError as error:
            raise from_grpc_error(
                error, sent_request_id=sent, idempotency_key=idempotency_key
            ) from error
        return reply, request_id_from(await call.trailing_metadata()) or sent

    async def close(self) -> None:
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class LivenessClient:
    """The blocking twin of :class:`AsyncLivenessClient`, with the same arguments and results."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        tls: TLSConfig | None = None,
        auth_token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.Channel | None = None,
    ) -> None:
        if channel is None:
            opts = channel_options(options)
            channel = (
                grpc.secure_channel(target, tls.credentials(), options=opts)
                if tls is not None
                else grpc.insecure_channel(target, options=opts)
            )
            self._owns_channel = True
        else:
            self._owns_channel = False
        self.target = target
        self._channel: grpc.Channel = channel
        self._stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._settings = _Settings(timeout, auth_token)

    def upload(
        self,
        data: bytes | None = None,
        *,
        url: str | None = None,
        request: pb.UploadRequest | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Metadata = (),
    ) -> UploadResult:
        """Store liveness data (bytes, a url, or a whole ``UploadRequest``) at the vendor.

        Sent with ``idempotency_key`` (or the request's ``request_id``), else with a fresh UUID
        made for this call; the result and any exception carry it as ``idempotency_key``."""
        message, key = with_idempotency_key(
            upload_request(data, url=url, request=request),
            idempotency_key,
            generate=True,
            owned=request is None,
        )
        reply, rid = self._call(self._stub.Upload, message, timeout, request_id, metadata, key)
        return UploadResult.from_proto(reply, rid, key)

    def detect(
        self,
        data: bytes | None = None,
        *,
        url: str | None = None,
        liveness_data_id: str | None = None,
        request: pb.DetectRequest | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Metadata = (),
    ) -> DetectResult:
        """Score liveness data with LinkFace: exactly one of bytes, a url, an Upload id, or a
        whole ``DetectRequest`` (sent as it is, for the gateway to validate). An
        ``idempotency_key`` is sent only when given (or set in the request)."""
        message, key = with_idempotency_key(
            detect_request(data, url=url, liveness_data_id=liveness_data_id, request=request),
            idempotency_key,
            generate=False,
            owned=request is None,
        )
        reply, rid = self._call(self._stub.Detect, message, timeout, request_id, metadata, key)
        return DetectResult.from_proto(reply, rid, key)

    def anti_hack(
        self,
        data: bytes | None = None,
        *,
        image_id: str | None = None,
        return_image: bool = False,
        return_extra: bool = False,
        request: pb.AntiHackRequest | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Metadata = (),
    ) -> AntiHackResult:
        """Score liveness data with AccuAuth: bytes, an H5 ``image_id``, or a whole
        ``AntiHackRequest`` (its own ``return_*`` flags then apply). An ``idempotency_key`` is
        sent only when given (or set in the request)."""
        message, key = with_idempotency_key(
            anti_hack_request(
                data,
                image_id=image_id,
                return_image=return_image,
                return_extra=return_extra,
                request=request,
            ),
            idempotency_key,
            generate=False,
            owned=request is None,
        )
        reply, rid = self._call(self._stub.AntiHack, message, timeout, request_id, metadata, key)
        return AntiHackResult.from_proto(reply, rid, key)

    def health(
        self, service: str = "", *, timeout: float | None = None, request_id: str | None = None
    ) -> str:
        """The ``grpc.health.v1`` status of ``service`` ("" is the whole server): "SERVING"..."""
        request = health_pb2.HealthCheckRequest(service=service)
        reply, _ = self._call(self._health.Check, request, timeout, request_id, ())
        return _health_name(reply.status)

    def _call(
        self,
        method: Any,  # the stub's grpc.UnaryUnaryMultiCallable: with_call gives the trailers
        request: Message,
        timeout: float | None,
        request_id: str | None,
        metadata: Metadata,
        idempotency_key: str = "",
    ) -> tuple[Any, str]:
        """The reply and the gateway's request id (from the trailers), or the exception (which
        carries ``idempotency_key``, the request's ``request_id``)."""
        kwargs, sent = self._settings.call_kwargs(timeout, request_id, metadata)
        try:
            reply, call = method.with_call(request, **kwargs)
        except grpc.RpcError as error:
            raise from_grpc_error(
                error, sent_request_id=sent, idempotency_key=idempotency_key
            ) from error
        return reply, request_id_from(call.trailing_metadata()) or sent

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
