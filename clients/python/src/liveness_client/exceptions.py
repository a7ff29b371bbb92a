"""The client's exceptions: one class per gRPC code, refined by reason family.

In the spirit of google-api-core's exceptions: every class declares the ``grpc.StatusCode``
it stands for, and :func:`from_grpc_error` / :func:`from_status` pick the class from a status;
within a code, the ErrorInfo reason picks a family (:class:`RateLimited`,
:class:`QuotaExceeded`, :class:`Overloaded`, :class:`CircuitOpen`, :class:`StoreUnavailable`,
:class:`RequestIdReused`).
Each exception carries what the gateway put in ``grpc-status-details-bin`` (AIP-193): the
single ``ErrorInfo`` (``reason`` as a :class:`Reason`, ``domain``, ``metadata``), ``RetryInfo``
as ``retry_after`` in seconds, the ``QuotaFailure`` / ``BadRequest`` violations, the gateway's
``x-request-id``, and the ``idempotency_key`` the call sent.

gRPC itself already resent what the gateway allowed (the shipped service config honours its
``grpc-retry-pushback-ms``), so an exception is the final outcome of the call:

    try:
        result = await client.detect(data=blob)
    except RateLimited as e:
        log.warning("rate limited (%s), request %s", e.reason, e.request_id)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from liveness_client._proto.liveness.v1 import error_reason_pb2

DOMAIN = "liveness.v1"
"""The ErrorInfo domain of every error the gateway itself produces."""

REQUEST_ID_KEY = "x-request-id"
"""The metadata key of the request id: sent by the client, returned in the gateway's trailers."""


class Reason(enum.StrEnum):
    """The ErrorInfo reasons of the domain ``liveness.v1``: one member per value of the contract's
    ``liveness.v1.ErrorReason`` (``ERROR_REASON_UNSPECIFIED`` excepted), made at import time from
    the generated descriptor so the catalogue never drifts from error_reason.proto. A StrEnum:
    ``e.reason == "OUT_OF_QUOTA"`` holds. ``Reason.CIRCUIT_OPEN`` works at run time; type
    checkers do not list generated members, so typed code says ``Reason["CIRCUIT_OPEN"]``."""

    _ignore_ = "_value"  # the loop variable, not a member
    for _value in error_reason_pb2.ErrorReason.DESCRIPTOR.values:
        if _value.number != 0:
            vars()[_value.name] = _value.name


def parse_reason(name: str) -> Reason | str:
    """The :class:`Reason` named ``name``; a name outside the catalogue (another domain, a newer
    gateway) is kept as the plain ``str`` it was, and ``""`` (no ErrorInfo) stays ``""``."""
    try:
        return Reason[name]
    except KeyError:
        return name


_DEFAULT_RATE_LIMIT_DELAY_S = 1.0
"""What the gateway documents when the vendor gave no Retry-After."""

_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True)
class QuotaViolation:
    """One ``google.rpc.QuotaFailure.Violation``."""

    subject: str
    description: str


@dataclass(frozen=True)
class FieldViolation:
    """One ``google.rpc.BadRequest.FieldViolation``: which request field was refused and why."""

    field: str
    description: str


class LivenessError(Exception):
    """Base class: a failed call to the gateway, with the details of its ``google.rpc.Status``.

    ``code`` is the class's gRPC code; only :class:`UnknownError` (the class for codes without
    their own class) takes its instance's code from the status.
    """

    code: ClassVar[grpc.StatusCode | None] = None

    def __init__(
        self,
        message: str,
        *,
        reason: Reason | str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        quota_violations: Sequence[QuotaViolation] = (),
        field_violations: Sequence[FieldViolation] = (),
        status: status_pb2.Status | None = None,
        request_id: str = "",
        idempotency_key: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason: Reason | str = parse_reason(reason)
        """The ErrorInfo reason: a :class:`Reason` (a ``str``, so ``== "OUT_OF_QUOTA"`` holds),
        the plain name when it is not in the catalogue, ``""`` when the status had none."""
        self.domain = domain
        self.metadata: Mapping[str, str] = dict(metadata or {})
        """ErrorInfo metadata: ``vendor``, ``httpStatus``, ``vendorRequestId`` where known."""
        self._retry_after = retry_after
        self.quota_violations = tuple(quota_violations)
        self.field_violations = tuple(field_violations)
        self.status = status
        """The full ``google.rpc.Status``, when the server sent one."""
        self.request_id = request_id
        """The gateway's ``x-request-id`` from the trailers (the one the client sent when no
        server answered): quote it when asking about this call."""
        self.idempotency_key = idempotency_key
        """The ``request_id`` field (AIP-155 idempotency key) the call sent, ``""`` for none:
        always set for an upload. Resend the same request with it as ``idempotency_key`` to get
        the first call's outcome instead of a second vendor call."""

    @property
    def grpc_code(self) -> grpc.StatusCode:
        """The gRPC code of this failure (``UNKNOWN`` on the base class)."""
        return self.code or grpc.StatusCode.UNKNOWN

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before retrying, from ``google.rpc.RetryInfo``; None without one."""
        return self._retry_after

    @property
    def vendor(self) -> str | None:
        return self.metadata.get("vendor")

    @property
    def vendor_request_id(self) -> str | None:
        return self.metadata.get("vendorRequestId")

    def __str__(self) -> str:
        label = self.grpc_code.name
        if self.reason:
            label += f" {self.reason}"
        return f"{label}: {self.message}" if self.message else label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.grpc_code.name}, reason={self.reason!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class InvalidArgument(LivenessError):
    """The request or its liveness data was refused: ``INVALID_REQUEST`` (the gateway's
    validation; ``field_violations`` names the field) or a vendor's reason (``NO_FACE_DETECTED``,
    ``WRONG_LIVENESS_DATA``...). Resending the same request cannot help."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reasons: ClassVar[frozenset[str]] = frozenset()


class RequestIdReused(InvalidArgument):
    """The idempotency key (``idempotency_key``, the request's ``request_id``) was used before by
    this caller with another input or for another RPC, within the gateway's idempotency window
    (``REQUEST_ID_REUSED``; ``field_violations`` names ``request_id``). A bug of the caller: each
    distinct request needs its own key; nothing was sent to the vendor."""

    reasons = frozenset({"REQUEST_ID_REUSED"})


class DeadlineExceeded(LivenessError):
    """The call's deadline expired (``DEADLINE_EXCEEDED`` when the gateway saw it expire)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(LivenessError):
    """The server does not know the requested object: ``DECISION_NOT_FOUND`` (an audit record
    id), or an unknown health service."""

    code = grpc.StatusCode.NOT_FOUND


class PermissionDenied(LivenessError):
    """The gateway knows the caller but its callers file does not let it call this RPC
    (``CALLER_NOT_ALLOWED``)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(LivenessError):
    """The gateway's caller authentication knows no such caller (``CALLER_UNKNOWN``): no
    registered client certificate and no known bearer token."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(LivenessError):
    """A limit was hit; the subclasses say which family. Itself: ``RESPONSE_TOO_LARGE`` (call
    again without ``return_image``) or a vendor 429 with an undocumented status."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reasons: ClassVar[frozenset[str]] = frozenset()
    """The reasons (of this class's code) that select this class rather than its parent."""


class RateLimited(ResourceExhausted):
    """A rate limit: the caller's at the gateway (``CALLER_RATE_LIMITED``), the gateway's for a
    vendor contract (``GATEWAY_RATE_LIMITED``) or the vendor's (``RATE_LIMIT_EXCEEDED``).

    gRPC already resent the call after the advised delays, within the deadline; back off
    ``retry_after`` seconds before the next one.
    """

    reasons = frozenset({"RATE_LIMIT_EXCEEDED", "CALLER_RATE_LIMITED", "GATEWAY_RATE_LIMITED"})

    @property
    def retry_after(self) -> float:
        """Always set: the gateway's RetryInfo, or its documented default of one second."""
        delay = self._retry_after
        return _DEFAULT_RATE_LIMIT_DELAY_S if delay is None else delay


class QuotaExceeded(ResourceExhausted):
    """A quota is used up: the gateway's vendor account (``OUT_OF_QUOTA``, the operator's to
    fix) or the caller's daily quota (``CALLER_QUOTA_EXCEEDED``; ``retry_after`` says when the UTC
    day ends). Never resent: retrying soon cannot help."""

    reasons = frozenset({"OUT_OF_QUOTA", "CALLER_QUOTA_EXCEEDED"})


class Cancelled(LivenessError):
    """The call was cancelled."""

    code = grpc.StatusCode.CANCELLED


class Unimplemented(LivenessError):
    """The target does not serve this RPC (is it a liveness gateway?)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(LivenessError):
    """The gateway or its vendor account is at fault (credentials, configuration, a bug)."""

    code = grpc.StatusCode.INTERNAL


class Unavailable(LivenessError):
    """The gateway or the vendor cannot answer now. The gateway made every attempt that was safe
    and gRPC resent the call as far as the gateway's pushback allowed; this is the final outcome.
    """

    code = grpc.StatusCode.UNAVAILABLE
    reasons: ClassVar[frozenset[str]] = frozenset()


class Overloaded(Unavailable):
    """The gateway is at a concurrency limit (``OVERLOADED``); nothing was sent to the vendor.
    ``retry_after`` (always set) is the gateway's advised delay."""

    reasons = frozenset({"OVERLOADED"})

    @property
    def retry_after(self) -> float:
        delay = self._retry_after
        return _DEFAULT_RATE_LIMIT_DELAY_S if delay is None else delay


class CircuitOpen(Unavailable):
    """The vendor endpoint failed repeatedly and the gateway's breaker is open
    (``CIRCUIT_OPEN``); ``retry_after`` (always set) says when the next probe may go."""

    reasons = frozenset({"CIRCUIT_OPEN"})

    @property
    def retry_after(self) -> float:
        delay = self._retry_after
        return _DEFAULT_RATE_LIMIT_DELAY_S if delay is None else delay


class StoreUnavailable(Unavailable):
    """A store the gateway needs for the call cannot be reached: its audit trail
    (``AUDIT_UNAVAILABLE``) or, in fleet mode, the shared state store of a limit whose policy is
    to fail closed (``STATE_UNAVAILABLE``). The operator's to fix; nothing was sent to the
    vendor. ``retry_after`` (always set) is the gateway's advised delay."""

    reasons = frozenset({"AUDIT_UNAVAILABLE", "STATE_UNAVAILABLE"})

    @property
    def retry_after(self) -> float:
        delay = self._retry_after
        return _DEFAULT_RATE_LIMIT_DELAY_S if delay is None else delay


class UnknownError(LivenessError):
    """Any code without a class of its own; ``grpc_code`` says which."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(
        self, message: str, *, grpc_code: grpc.StatusCode | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self._grpc_code = grpc_code or grpc.StatusCode.UNKNOWN

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return self._grpc_code


_BY_CODE: Mapping[grpc.StatusCode, type[LivenessError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Cancelled,
        Unimplemented,
        Internal,
        Unavailable,
        UnknownError,
    )
    if cls.code is not None
}


_FAMILIES: tuple[type[ResourceExhausted] | type[Unavailable] | type[InvalidArgument], ...] = (
    RequestIdReused,
    RateLimited,
    QuotaExceeded,
    Overloaded,
    CircuitOpen,
    StoreUnavailable,
)


def exception_class_for(code: grpc.StatusCode, reason: str = "") -> type[LivenessError]:
    """The class for a gRPC code, refined by the ErrorInfo reason's family within that code."""
    for family in _FAMILIES:
        if family.code is code and reason in family.reasons:
            return family
    return _BY_CODE.get(code, UnknownError)


def from_status(
    code: grpc.StatusCode,
    message: str,
    status: status_pb2.Status | None = None,
    *,
    request_id: str = "",
) -> LivenessError:
    """Build the exception for ``code``, reading the details packed in ``status``."""
    kwargs: dict[str, Any] = {"status": status, "request_id": request_id}
    quota: list[QuotaViolation] = []
    fields: list[FieldViolation] = []
    for detail in status.details if status is not None else ():
        if (info := _unpack(detail, error_details_pb2.ErrorInfo)) is not None:
            # AIP-193 promises one ErrorInfo; keep the first should a proxy add another.
            if "reason" not in kwargs:
                kwargs.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
        elif (retry := _unpack(detail, error_details_pb2.RetryInfo)) is not None:
            kwargs["retry_after"] = retry.retry_delay.ToTimedelta().total_seconds()
        elif (failure := _unpack(detail, error_details_pb2.QuotaFailure)) is not None:
            quota.extend(QuotaViolation(v.subject, v.description) for v in failure.violations)
        elif (bad := _unpack(detail, error_details_pb2.BadRequest)) is not None:
            fields.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    cls = exception_class_for(code, kwargs.get("reason", ""))
    if cls is UnknownError:
        kwargs["grpc_code"] = code
    return cls(message, quota_violations=quota, field_violations=fields, **kwargs)


def from_grpc_error(
    error: grpc.RpcError, *, sent_request_id: str = "", idempotency_key: str = ""
) -> LivenessError:
    """Build the exception for a failed call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``).

    The rich status and the request id are taken from the call's trailing metadata; without a
    request id there (no server answered), the one the client sent is kept. A status that does
    not match the call's code is ignored, as grpcio-status does, and so is one that does not
    parse. ``idempotency_key`` is the ``request_id`` the call sent, kept on the exception.
    """
    code: grpc.StatusCode = getattr(error, "code", lambda: grpc.StatusCode.UNKNOWN)()
    message: str = getattr(error, "details", lambda: "")() or ""
    status: status_pb2.Status | None = None
    try:
        status = rpc_status.from_call(error)
    except Exception:  # a code mismatch or a malformed blob must not hide the real error
        status = None
    request_id = request_id_from(_trailing_metadata(error)) or sent_request_id
    exception = from_status(code, message, status, request_id=request_id)
    exception.idempotency_key = idempotency_key
    return exception


def request_id_from(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The ``x-request-id`` in ``metadata`` (the last one, should a proxy add its own)."""
    found = ""
    for key, value in metadata or ():
        if key.lower() == REQUEST_ID_KEY:
            found = value.decode() if isinstance(value, bytes) else value
    return found


def _trailing_metadata(error: grpc.RpcError) -> Sequence[tuple[str, str | bytes]] | None:
    trailing = getattr(error, "trailing_metadata", None)
    if trailing is None:
        return None
    try:
        metadata: Sequence[tuple[str, str | bytes]] | None = trailing()
    except Exception:  # a call object that never reached the server
        return None
    return metadata


def _unpack(detail: any_pb2.Any, message_type: type[_M]) -> _M | None:
    message = message_type()
    return message if detail.Unpack(message) else None
