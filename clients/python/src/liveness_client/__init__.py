"""Python client for the liveness-gateway (``liveness.v1.LivenessCheck``).

async with AsyncLivenessClient("localhost:50051") as client:
    result = await client.detect(data=blob)
    print(result.score, result.verdict, result.request_id)
"""

from liveness_client._version import __version__
from liveness_client.channel import (
    DEFAULT_TARGET,
    DEFAULT_TIMEOUT_S,
    MAX_MESSAGE_BYTES,
    SERVICE_CONFIG,
    TLSConfig,
)
from liveness_client.client import AsyncLivenessClient, LivenessClient
from liveness_client.exceptions import (
    DOMAIN,
    REQUEST_ID_KEY,
    Cancelled,
    CircuitOpen,
    DeadlineExceeded,
    FieldViolation,
    Internal,
    InvalidArgument,
    LivenessError,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    QuotaViolation,
    RateLimited,
    Reason,
    RequestIdReused,
    ResourceExhausted,
    StoreUnavailable,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    UnknownError,
    exception_class_for,
    from_grpc_error,
    from_status,
    parse_reason,
)
from liveness_client.idempotency import is_valid_idempotency_key, new_idempotency_key
from liveness_client.results import (
    AntiHackResult,
    DetectResult,
    FaceQuality,
    UploadResult,
    Verdict,
)

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT_S",
    "DOMAIN",
    "MAX_MESSAGE_BYTES",
    "REQUEST_ID_KEY",
    "SERVICE_CONFIG",
    "AntiHackResult",
    "AsyncLivenessClient",
    "Cancelled",
    "CircuitOpen",
    "DeadlineExceeded",
    "DetectResult",
    "FaceQuality",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "LivenessClient",
    "LivenessError",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "QuotaExceeded",
    "QuotaViolation",
    "RateLimited",
    "Reason",
    "RequestIdReused",
    "ResourceExhausted",
    "StoreUnavailable",
    "TLSConfig",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "UnknownError",
    "UploadResult",
    "Verdict",
    "__version__",
    "exception_class_for",
    "from_grpc_error",
    "from_status",
    "is_valid_idempotency_key",
    "new_idempotency_key",
    "parse_reason",
]
