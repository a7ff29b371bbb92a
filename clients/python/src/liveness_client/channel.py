"""Channel defaults shared by the async and sync clients: service config, options, TLS, metadata.

Retries are gRPC's own (gRFC A6), declared in the channel's service config: the client never
loops itself. Only ``UNAVAILABLE`` is retried, and only for the idempotent RPCs; ``Upload``
creates a new stored object on every call, so it is never replayed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from liveness_client._version import __version__

SERVICE = "liveness.v1.LivenessCheck"
HEALTH_SERVICE = "grpc.health.v1.Health"

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT_S = 15.0
"""Per-call deadline: above the gateway's 10 s vendor timeout, covering all retry attempts."""

MAX_MESSAGE_BYTES = 6 * 1024 * 1024
"""The gateway accepts 6 MiB messages so that a legal 5 MiB payload always fits."""

_RETRY_BUFFER_BYTES = 4 * MAX_MESSAGE_BYTES
"""gRPC only replays requests it buffered; the default 256 KiB would skip retrying big ones."""

RETRY_POLICY: Mapping[str, Any] = {
    "maxAttempts": 3,
    "initialBackoff": "0.2s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}

SERVICE_CONFIG: Mapping[str, Any] = {
    "methodConfig": [
        {
            "name": [
                {"service": SERVICE, "method": "Detect"},
                {"service": SERVICE, "method": "AntiHack"},
                {"service": HEALTH_SERVICE},
            ],
            "retryPolicy": RETRY_POLICY,
        },
        {
            # Not idempotent: no retryPolicy.
            "name": [{"service": SERVICE, "method": "Upload"}],
        },
    ],
    # Stop retrying when most calls fail, so a broken gateway is not hit three times as hard.
    "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
}


def service_config_json() -> str:
    return json.dumps(SERVICE_CONFIG, separators=(",", ":"))


def channel_options(extra: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """The client's channel options; ``extra`` entries override the defaults by name."""
    options: dict[str, Any] = {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
        "grpc.enable_retries": 1,
        "grpc.service_config": service_config_json(),
        "grpc.per_rpc_retry_buffer_size": MAX_MESSAGE_BYTES,
        "grpc.retry_buffer_size": _RETRY_BUFFER_BYTES,
        "grpc.primary_user_agent": f"liveness-client-python/{__version__}",
    }
    options.update(dict(extra))
    return list(options.items())


@dataclass(frozen=True)
class TLSConfig:
    """TLS for the channel: the CA roots to trust, and a client certificate for mTLS.

    All fields are PEM bytes; ``root_certificates=None`` uses the system's roots.
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("mTLS needs both a client certificate and its private key")

    @classmethod
    def from_files(
        cls,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
    ) -> TLSConfig:
        def read(path: str | Path | None) -> bytes | None:
            return Path(path).read_bytes() if path is not None else None

        return cls(read(ca), read(cert), read(key))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def call_metadata(
    *,
    auth_token: str | None,
    request_id: str | None,
    extra: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """Per-call metadata: ``x-request-id`` (a fresh one unless given) and bearer auth."""
    metadata = [("x-request-id", request_id or uuid.uuid4().hex)]
    if auth_token:
        metadata.append(("authorization", f"Bearer {auth_token}"))
    metadata.extend(extra)
    return metadata
