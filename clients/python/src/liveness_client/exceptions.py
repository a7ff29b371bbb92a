"""The client's exceptions: one class per gRPC code, built from the gateway's rich status.

In the spirit of google-api-core's exceptions: every class declares the ``grpc.StatusCode``
it stands for, and :func:`from_grpc_error` / :func:`from_status` pick the class from a status.
Each exception carries what the gateway put in ``grpc-status-details-bin`` (AIP-193): the
single ``ErrorInfo`` (``reason``, ``domain``, ``metadata``), ``RetryInfo`` as
``retry_after`` in seconds, and the ``QuotaFailure`` / ``BadRequest`` violations.

    try:
        result = await client.detect(data=blob)
    except RateLimited as e:
        await asyncio.sleep(e.retry_after)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "liveness.v1"
"""The ErrorInfo domain of every error the gateway itself produces."""

RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
"""The ErrorInfo reason of a retryable rate limit (the only reason with its own class)."""

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
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        quota_violations: Sequence[QuotaViolation] = (),
        field_violations: Sequence[FieldViolation] = (),
        status: status_pb2.Status | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        """The ErrorInfo reason, e.g. ``OUT_OF_QUOTA``; ``""`` when the status had none."""
        self.domain = domain
        self.metadata: Mapping[str, str] = dict(metadata or {})
        """ErrorInfo metadata: ``vendor``, ``httpStatus``, ``vendorRequestId`` where known."""
        self._retry_after = retry_after
        self.quota_violations = tuple(quota_violations)
        self.field_violations = tuple(field_violations)
        self.status = status
        """The full ``google.rpc.Status``, when the server sent one."""

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
            f"message={self.message!r})"
        )


class InvalidArgument(LivenessError):
    """The request or its liveness data was refused (``INVALID_REQUEST`` or a vendor reason)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(LivenessError):
    """The call's deadline expired."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(LivenessError):
    """The server does not know the requested object (e.g. an unknown health service)."""

    code = grpc.StatusCode.NOT_FOUND


class PermissionDenied(LivenessError):
    """Refused by an authorising proxy in front of the gateway."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(LivenessError):
    """Missing or wrong credentials, from an authenticating proxy in front of the gateway."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(LivenessError):
    """A vendor quota is used up (``OUT_OF_QUOTA``): retrying soon will not help."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class RateLimited(ResourceExhausted):
    """A vendor rate limit (``RATE_LIMIT_EXCEEDED``): wait ``retry_after`` seconds, then retry."""

    @property
    def retry_after(self) -> float:
        """Always set: the gateway's RetryInfo, or its documented default of one second."""
        delay = self._retry_after
        return _DEFAULT_RATE_LIMIT_DELAY_S if delay is None else delay


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
    """The gateway or the vendor cannot answer now; the client already retried it."""

    code = grpc.StatusCode.UNAVAILABLE


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


def exception_class_for(code: grpc.StatusCode, reason: str = "") -> type[LivenessError]:
    """The class for a gRPC code (and, for ``RESOURCE_EXHAUSTED``, the ErrorInfo reason)."""
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and reason == RATE_LIMIT_EXCEEDED:
        return RateLimited
    return _BY_CODE.get(code, UnknownError)


def from_status(
    code: grpc.StatusCode, message: str, status: status_pb2.Status | None = None
) -> LivenessError:
    """Build the exception for ``code``, reading the details packed in ``status``."""
    kwargs: dict[str, Any] = {"status": status}
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


def from_grpc_error(error: grpc.RpcError) -> LivenessError:
    """Build the exception for a failed call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``).

    The rich status is taken from the call's trailing metadata. A status that does not match
    the call's code is ignored, as grpcio-status does, and so is one that does not parse.
    """
    code: grpc.StatusCode = getattr(error, "code", lambda: grpc.StatusCode.UNKNOWN)()
    message: str = getattr(error, "details", lambda: "")() or ""
    status: status_pb2.Status | None = None
    try:
        status = rpc_status.from_call(error)
    except Exception:  # a code mismatch or a malformed blob must not hide the real error
        status = None
    return from_status(code, message, status)


def _unpack(detail: any_pb2.Any, message_type: type[_M]) -> _M | None:
    message = message_type()
    return message if detail.Unpack(message) else None
