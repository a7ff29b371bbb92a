"""Python client for the liveness-gateway (``liveness.v1.LivenessCheck``).

async with AsyncLivenessClient("localhost:50051") as client:
    result = await client.detect(data=blob)
    print(result.score, result.verdict)
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
    Cancelled,
    DeadlineExceeded,
    FieldViolation,
    Internal,
    InvalidArgument,
    LivenessError,
    NotFound,
    PermissionDenied,
    QuotaViolation,
    RateLimited,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    UnknownError,
    exception_class_for,
    from_grpc_error,
    from_status,
)
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
    "MAX_MESSAGE_BYTES",
    "SERVICE_CONFIG",
    "AntiHackResult",
    "AsyncLivenessClient",
    "Cancelled",
    "DeadlineExceeded",
    "DetectResult",
    "FaceQuality",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "LivenessClient",
    "LivenessError",
    "NotFound",
    "PermissionDenied",
    "QuotaViolation",
    "RateLimited",
    "ResourceExhausted",
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
]
