"""THE mapping from vendor replies and transport failures to gRPC statuses.

Every failure leaving the gateway is a :class:`GatewayError`. It turns into a
``google.rpc.Status`` with exactly one ``ErrorInfo`` (AIP-193) plus, where they apply,
``RetryInfo``, ``QuotaFailure`` or ``BadRequest``, and into the retry advice of gRFC A6
(``grpc-retry-pushback-ms``). The vendor status table below is the one the README shows;
nothing else in the package decides a status code. Every reason is a value of the contract's
``liveness.v1.ErrorReason`` enum: a :class:`GatewayError` cannot be built with any other.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from liveness.v1.error_reason_pb2 import ErrorReason

from liveness_gateway import DOMAIN
from liveness_gateway.scrub import MAX_TEXT_CHARS, NO_SECRETS, Scrubber

Code = grpc.StatusCode
"""Short alias for the table below."""

# --- the gateway's own ErrorInfo reasons (stable: callers branch on them) ---
INVALID_REQUEST = "INVALID_REQUEST"
VENDOR_UNREACHABLE = "VENDOR_UNREACHABLE"
VENDOR_TIMEOUT = "VENDOR_TIMEOUT"
VENDOR_HTTP_ERROR = "VENDOR_HTTP_ERROR"
VENDOR_BAD_REPLY = "VENDOR_BAD_REPLY"
VENDOR_UNKNOWN_STATUS = "VENDOR_UNKNOWN_STATUS"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
GATEWAY_INTERNAL = "GATEWAY_INTERNAL"
RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
OVERLOADED = "OVERLOADED"
CIRCUIT_OPEN = "CIRCUIT_OPEN"
GATEWAY_RATE_LIMITED = "GATEWAY_RATE_LIMITED"
CALLER_UNKNOWN = "CALLER_UNKNOWN"
CALLER_NOT_ALLOWED = "CALLER_NOT_ALLOWED"
CALLER_RATE_LIMITED = "CALLER_RATE_LIMITED"
CALLER_QUOTA_EXCEEDED = "CALLER_QUOTA_EXCEEDED"
VENDOR_REQUEST_REJECTED = "VENDOR_REQUEST_REJECTED"
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"
STATE_UNAVAILABLE = "STATE_UNAVAILABLE"
DECISION_NOT_FOUND = "DECISION_NOT_FOUND"

_DEFAULT_RETRY_DELAY_S = 1.0
_MAX_RETRY_DELAY_S = 3600.0


@dataclass(frozen=True)
class VendorStatusRule:
    """How one documented vendor ``status`` string maps onto gRPC."""

    code: grpc.StatusCode
    retry_info: bool = False
    quota_failure: bool = False
    callers_fault: bool = False
    """UNAVAILABLE, but because of what the caller sent: never held against the vendor."""


VENDOR_STATUS_TABLE: Mapping[str, VendorStatusRule] = {
    # The caller's input is at fault.
    "INVALID_ARGUMENT": VendorStatusRule(Code.INVALID_ARGUMENT),
    "ENCODING_ERROR": VendorStatusRule(Code.INVALID_ARGUMENT),
    "WRONG_LIVENESS_DATA": VendorStatusRule(Code.INVALID_ARGUMENT),
    "NO_FACE_DETECTED": VendorStatusRule(Code.INVALID_ARGUMENT),
    "DETETION_FAILED": VendorStatusRule(Code.INVALID_ARGUMENT),  # sic, the page's spelling
    "DETECTION_FAILED": VendorStatusRule(Code.INVALID_ARGUMENT),  # the same, spelt right
    "DOWNLOAD_ERROR": VendorStatusRule(Code.INVALID_ARGUMENT),
    # The caller's url was slow: may work on a retry.
    "DOWNLOAD_TIMEOUT": VendorStatusRule(Code.UNAVAILABLE, callers_fault=True),
    # The gateway's own vendor account or configuration is at fault, never the caller.
    "UNAUTHORIZED": VendorStatusRule(Code.INTERNAL),
    "KEY_EXPIRED": VendorStatusRule(Code.INTERNAL),
    "NO_PERMISSION": VendorStatusRule(Code.INTERNAL),
    "NOT_FOUND": VendorStatusRule(Code.INTERNAL),
    # Quota.
    "RATE_LIMIT_EXCEEDED": VendorStatusRule(
        Code.RESOURCE_EXHAUSTED, retry_info=True, quota_failure=True
    ),
    "OUT_OF_QUOTA": VendorStatusRule(Code.RESOURCE_EXHAUSTED, quota_failure=True),
    # The vendor is failing.
    "INTERNAL_ERROR": VendorStatusRule(Code.UNAVAILABLE),
}

REASONS: frozenset[str] = frozenset(
    name for name, _ in ErrorReason.items() if name != "ERROR_REASON_UNSPECIFIED"
)
"""Every ErrorInfo reason the gateway may emit: the contract's catalogue."""

RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"
_RETRY_AFTER_DELAY = frozenset(
    {
        "OVERLOADED",
        "CIRCUIT_OPEN",
        "GATEWAY_RATE_LIMITED",
        "CALLER_RATE_LIMITED",
        "RATE_LIMIT_EXCEEDED",
        "AUDIT_UNAVAILABLE",
        "STATE_UNAVAILABLE",
    }
)
"""Transient refusals: resent after the advised delay (the enum's "Retry: after RetryInfo")."""


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field, for google.rpc.BadRequest."""

    field: str
    description: str


class GatewayError(Exception):
    """A failure that reaches the caller as a gRPC status.

    ``message`` is shown to the caller: it must never hold exception text, a URL query or a
    secret. Build instances through the factories below rather than by hand.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        *,
        vendor: str | None = None,
        http_status: int | None = None,
        vendor_request_id: str | None = None,
        retry_delay_s: float | None = None,
        quota_subject: str | None = None,
        violations: Sequence[FieldViolation] = (),
        never_sent: bool = False,
        vendor_fault: bool = False,
        details: Mapping[str, str] | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"{reason!r} is not a liveness.v1.ErrorReason")
        super().__init__(message)
        self.never_sent = never_sent
        """The request provably never reached the vendor (connect failure): safe to resend."""
        self.vendor_fault = vendor_fault
        """Held against the vendor's health (breaker, retry budget) whatever the code."""
        self.details = dict(details or {})
        """Extra ErrorInfo metadata: the vendor's own short reason and detail, scrubbed."""
        self.code = code
        self.reason = reason
        self.message = message
        self.vendor = vendor
        self.http_status = http_status
        self.vendor_request_id = vendor_request_id
        self.retry_delay_s = retry_delay_s
        self.quota_subject = quota_subject
        self.violations = tuple(violations)

    @property
    def metadata(self) -> dict[str, str]:
        """The ErrorInfo metadata: stable lowerCamel keys, only the known ones."""
        meta: dict[str, str] = {}
        if self.vendor:
            meta["vendor"] = self.vendor
        if self.http_status is not None:
            meta["httpStatus"] = str(self.http_status)
        if self.vendor_request_id:
            meta["vendorRequestId"] = self.vendor_request_id
        meta.update(self.details)
        return meta

    @property
    def retry_pushback_ms(self) -> int:
        """gRFC A6 advice to clients: the delay before a resend, or -1 for "do not resend"
        (a resend cannot help, or the gateway already made every attempt that was safe)."""
        if self.reason in _RETRY_AFTER_DELAY and self.retry_delay_s is not None:
            # At least 1 ms: grpcio never resends on a pushback of 0, and the call would wait
            # out its whole deadline (a vendor's "Retry-After: 0").
            return max(1, math.ceil(self.retry_delay_s * 1000))
        return -1

    def to_status(self) -> status_pb2.Status:
        """The google.rpc.Status carried in ``grpc-status-details-bin``."""
        details: list[any_pb2.Any] = []
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=DOMAIN, metadata=self.metadata
        )
        details.append(_pack(info))
        if self.retry_delay_s is not None:
            details.append(
                _pack(error_details_pb2.RetryInfo(retry_delay=_duration(self.retry_delay_s)))
            )
        if self.quota_subject is not None:
            violation = error_details_pb2.QuotaFailure.Violation(
                subject=self.quota_subject, description=self.message
            )
            details.append(_pack(error_details_pb2.QuotaFailure(violations=[violation])))
        if self.violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
            details.append(_pack(bad))
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=details)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


# --- factories -----------------------------------------------------------------------------


def invalid_request(violations: Sequence[FieldViolation]) -> GatewayError:
    """The caller's request failed validation; no vendor was called."""
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return GatewayError(
        Code.INVALID_ARGUMENT, INVALID_REQUEST, f"invalid request: {summary}", violations=violations
    )


_STATUS_WORD_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,61}[A-Z0-9]$")
_MISSING_SOURCE = re.compile(r"must specify|missing|required|exactly one", re.IGNORECASE)


def from_vendor_status(
    vendor: str,
    status: str,
    *,
    http_status: int,
    vendor_request_id: str | None,
    vendor_reason: str | None,
    retry_after: str | None,
    vendor_detail: str | None = None,
    scrubber: Scrubber = NO_SECRETS,
    source_parts: Iterable[str] = (),
) -> GatewayError:
    """A vendor error reply (``{"status": ..., "reason": ...}``), mapped by the table.

    ``source_parts`` are the part names the endpoint's data may travel in: an
    INVALID_ARGUMENT whose reason says one of them is missing means the vendor reads its
    page another way than the gateway sends it. That is the gateway's fault, not the
    caller's: INTERNAL, held against the vendor.
    """
    reason = scrubber.text(vendor_reason) if vendor_reason else None
    details = {
        key: text
        for key, value in (("vendorReason", vendor_reason), ("vendorDetail", vendor_detail))
        if (text := _short_detail(value, scrubber))
    }
    if (
        status == "INVALID_ARGUMENT"
        and reason
        and _MISSING_SOURCE.search(reason)
        and any(name in reason for name in source_parts)
    ):
        return GatewayError(
            Code.INTERNAL,
            VENDOR_REQUEST_REJECTED,
            f"{vendor} did not find the liveness data where the gateway sent it: {reason}",
            vendor=vendor,
            http_status=http_status,
            vendor_request_id=vendor_request_id,
            vendor_fault=True,
            details=details,
        )
    rule = VENDOR_STATUS_TABLE.get(status)
    if rule is None:
        return _unknown_vendor_status(
            vendor, status, http_status, vendor_request_id, retry_after, scrubber, details
        )
    text = f"{vendor} replied {status}"
    if reason:
        text += f": {reason}"
    return GatewayError(
        rule.code,
        status,
        text,
        vendor=vendor,
        http_status=http_status,
        vendor_request_id=vendor_request_id,
        retry_delay_s=parse_retry_after(retry_after) if rule.retry_info else None,
        quota_subject=f"vendor:{vendor}" if rule.quota_failure else None,
        details=details,
    )


def _short_detail(value: str | None, scrubber: Scrubber) -> str | None:
    """Vendor text for ErrorInfo metadata: kept whole where short, else left out."""
    if not value or len(value) > MAX_TEXT_CHARS:
        return None
    text = scrubber.text(value, limit=2 * MAX_TEXT_CHARS)
    return text if len(text) <= MAX_TEXT_CHARS else None


def from_vendor_http(vendor: str, http_status: int, *, retry_after: str | None) -> GatewayError:
    """A non-2xx reply whose body carries no vendor status (HTML, empty, garbage)."""
    if http_status == 429:
        return GatewayError(
            Code.RESOURCE_EXHAUSTED,
            RATE_LIMIT_EXCEEDED,
            f"{vendor} is rate limiting the gateway (HTTP 429)",
            vendor=vendor,
            http_status=http_status,
            retry_delay_s=parse_retry_after(retry_after),
            quota_subject=f"vendor:{vendor}",
        )
    code = Code.UNAVAILABLE if http_status >= 500 else Code.INTERNAL
    return GatewayError(
        code,
        VENDOR_HTTP_ERROR,
        f"{vendor} answered HTTP {http_status} without a vendor status",
        vendor=vendor,
        http_status=http_status,
    )


def _unknown_vendor_status(
    vendor: str,
    status: str,
    http_status: int,
    vendor_request_id: str | None,
    retry_after: str | None,
    scrubber: Scrubber,
    details: Mapping[str, str],
) -> GatewayError:
    # Undocumented status strings: the code follows the HTTP class; the reason is always
    # VENDOR_UNKNOWN_STATUS (the catalogue is closed), the word itself is metadata where it
    # is a well-formed UPPER_SNAKE word holding no secret.
    if _STATUS_WORD_RE.match(status) and not scrubber.has_secret(status):
        details = {**details, "vendorStatus": status}
    reason = VENDOR_UNKNOWN_STATUS
    if http_status == 429:
        code = Code.RESOURCE_EXHAUSTED
    elif http_status >= 500:
        code = Code.UNAVAILABLE
    else:
        code = Code.INTERNAL
    return GatewayError(
        code,
        reason,
        f"{vendor} replied with an undocumented status (HTTP {http_status})",
        vendor=vendor,
        http_status=http_status,
        vendor_request_id=vendor_request_id,
        retry_delay_s=parse_retry_after(retry_after) if http_status == 429 else None,
        quota_subject=f"vendor:{vendor}" if http_status == 429 else None,
        details=details,
    )


def bad_reply(
    vendor: str, what: str, *, http_status: int | None = None, vendor_request_id: str | None = None
) -> GatewayError:
    """A reply that cannot be trusted: truncated, not JSON, wrong shape, score out of range."""
    return GatewayError(
        Code.UNAVAILABLE,
        VENDOR_BAD_REPLY,
        f"{vendor} sent an unusable reply: {what}",
        vendor=vendor,
        http_status=http_status,
        vendor_request_id=vendor_request_id,
    )


def unreachable(vendor: str, *, never_sent: bool = False) -> GatewayError:
    """Connection refused, reset or dropped before a full reply arrived."""
    return GatewayError(
        Code.UNAVAILABLE,
        VENDOR_UNREACHABLE,
        f"{vendor} could not be reached",
        vendor=vendor,
        never_sent=never_sent,
    )


def overloaded(what: str, retry_delay_s: float, vendor: str | None = None) -> GatewayError:
    """Shed at once: the gateway (or its share of a vendor) is at its concurrency limit."""
    return GatewayError(
        Code.UNAVAILABLE,
        OVERLOADED,
        f"the gateway is overloaded ({what}); retry shortly",
        vendor=vendor,
        retry_delay_s=retry_delay_s,
    )


def circuit_open(vendor: str, retry_delay_s: float) -> GatewayError:
    """The vendor endpoint failed repeatedly; calls fail fast until a probe succeeds."""
    return GatewayError(
        Code.UNAVAILABLE,
        CIRCUIT_OPEN,
        f"{vendor} is failing; the gateway is not sending requests to it for now",
        vendor=vendor,
        retry_delay_s=retry_delay_s,
    )


def gateway_rate_limited(vendor: str, retry_delay_s: float, limit: str) -> GatewayError:
    """The gateway's own token bucket for the vendor's contract rate is empty."""
    return GatewayError(
        Code.RESOURCE_EXHAUSTED,
        GATEWAY_RATE_LIMITED,
        f"the gateway's request rate to {vendor} is at its limit ({limit})",
        vendor=vendor,
        retry_delay_s=retry_delay_s,
        quota_subject=f"vendor:{vendor}",
    )


def vendor_timeout(vendor: str) -> GatewayError:
    """The vendor did not answer within the gateway's own timeout; the caller still had time."""
    return GatewayError(
        Code.UNAVAILABLE, VENDOR_TIMEOUT, f"{vendor} did not answer in time", vendor=vendor
    )


def deadline_exceeded(vendor: str | None = None) -> GatewayError:
    """The caller's own deadline ran out."""
    return GatewayError(
        Code.DEADLINE_EXCEEDED,
        DEADLINE_EXCEEDED,
        "the call's deadline expired before the vendor answered",
        vendor=vendor,
    )


def response_too_large(size: int, limit: int) -> GatewayError:
    """The answer, with the vendor's face image, would exceed the gRPC message limit."""
    return GatewayError(
        Code.RESOURCE_EXHAUSTED,
        RESPONSE_TOO_LARGE,
        f"the response would be {size} bytes, over the {limit}-byte message limit; "
        "call again without return_image",
    )


def internal() -> GatewayError:
    """Anything unforeseen. The message is deliberately generic."""
    return GatewayError(Code.INTERNAL, GATEWAY_INTERNAL, "internal error in the gateway")


def unauthenticated() -> GatewayError:
    """No known caller: no matching client certificate and no known bearer token."""
    return GatewayError(
        Code.UNAUTHENTICATED,
        CALLER_UNKNOWN,
        "unknown caller: present a registered client certificate or bearer token",
    )


def permission_denied(caller: str, rpc: str) -> GatewayError:
    return GatewayError(
        Code.PERMISSION_DENIED, CALLER_NOT_ALLOWED, f"caller {caller} may not call {rpc}"
    )


def caller_rate_limited(
    caller: str, rate_per_s: float, burst: int, *, retry_delay_s: float | None = None
) -> GatewayError:
    """``retry_delay_s``: when the bucket has a token again (default: one token's time)."""
    limit = f"{rate_per_s:g} calls/s, burst {burst}"
    return GatewayError(
        Code.RESOURCE_EXHAUSTED,
        CALLER_RATE_LIMITED,
        f"caller {caller} is over its rate limit ({limit})",
        retry_delay_s=1.0 / rate_per_s if retry_delay_s is None else retry_delay_s,
        quota_subject=f"caller:{caller}",
    )


def caller_quota_exceeded(caller: str, daily_quota: int, seconds_left: float) -> GatewayError:
    return GatewayError(
        Code.RESOURCE_EXHAUSTED,
        CALLER_QUOTA_EXCEEDED,
        f"caller {caller} has used its daily quota ({daily_quota} calls per UTC day)",
        retry_delay_s=seconds_left,
        quota_subject=f"caller:{caller}",
    )


REQUEST_ID_FIELD = "request_id"


def request_id_reused(rpc: str) -> GatewayError:
    """The caller's request_id already names a call with other input, or another RPC."""
    return GatewayError(
        Code.INVALID_ARGUMENT,
        REQUEST_ID_REUSED,
        f"request_id was already used for a different {rpc} request or another RPC; "
        "choose a new request_id for new input",
        violations=(FieldViolation(REQUEST_ID_FIELD, "already used for a different request"),),
    )


def state_unavailable(limit: str, retry_delay_s: float) -> GatewayError:
    """A fleet-wide limit could not be checked and its policy is to fail closed."""
    return GatewayError(
        Code.UNAVAILABLE,
        STATE_UNAVAILABLE,
        f"the gateway cannot check the {limit} right now; retry shortly",
        retry_delay_s=retry_delay_s,
    )


def audit_unavailable(retry_delay_s: float) -> GatewayError:
    """The call's record could not be kept (audit database unreachable, journal full)."""
    return GatewayError(
        Code.UNAVAILABLE,
        AUDIT_UNAVAILABLE,
        "the gateway cannot record decisions right now (audit trail unavailable); retry later",
        retry_delay_s=retry_delay_s,
    )


def replayed(status: status_pb2.Status) -> GatewayError:
    """An error recorded for a request_id, answered again exactly as it was the first time."""
    reason = GATEWAY_INTERNAL
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
            break
    return _ReplayedError(status, reason if reason in REASONS else GATEWAY_INTERNAL)


class _ReplayedError(GatewayError):
    """A recorded status: its details are returned as they were recorded."""

    def __init__(self, status: status_pb2.Status, reason: str) -> None:
        super().__init__(_CODES.get(status.code, Code.INTERNAL), reason, status.message)
        self._status = status

    def to_status(self) -> status_pb2.Status:
        return self._status


_CODES = {code.value[0]: code for code in Code}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), clamped."""
    if value:
        value = value.strip()
        try:
            delay = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                delay = _DEFAULT_RETRY_DELAY_S
            else:
                delay = when.timestamp() - (time.time() if now is None else now)
        if math.isfinite(delay):
            return min(max(delay, 0.0), _MAX_RETRY_DELAY_S)
    return _DEFAULT_RETRY_DELAY_S


__all__ = [
    "VENDOR_STATUS_TABLE",
    "FieldViolation",
    "GatewayError",
    "bad_reply",
    "deadline_exceeded",
    "from_vendor_http",
    "from_vendor_status",
    "internal",
    "invalid_request",
    "parse_retry_after",
    "unreachable",
    "vendor_timeout",
]
