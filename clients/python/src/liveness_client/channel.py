"""Channel defaults shared by the async and sync clients: service config, options, TLS, metadata.

Retries are gRPC's own (gRFC A6), declared in the contract's service config
(``protos/liveness/v1/service_config.json``, shipped in this package by ``gen-proto.sh``): every
liveness RPC is retried on ``UNAVAILABLE`` and ``RESOURCE_EXHAUSTED`` at most three attempts in
all, and only as the gateway's ``grpc-retry-pushback-ms`` trailer allows (``-1``: never; ``N``:
after N ms), with ``retryThrottling`` per channel. The client never loops itself, so a call never
costs more vendor calls than the gateway's own attempts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import grpc

from liveness_client._version import __version__

SERVICE = "liveness.v1.LivenessCheck"

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT_S = 20.0
"""Per-call deadline: the service config's 20 s, above the gateway's worst case (its vendor
timeout and its own attempts) plus the advised waits between the client's attempts."""

MAX_MESSAGE_BYTES = 6 * 1024 * 1024
"""The gateway accepts 6 MiB messages so that a legal 5 MiB payload always fits."""

_PER_RPC_RETRY_BUFFER_BYTES = MAX_MESSAGE_BYTES
"""gRPC only resends requests it buffered; the default 256 KiB would never resend a 5 MiB one."""

_RETRY_BUFFER_BYTES = 4 * MAX_MESSAGE_BYTES
"""The channel-wide retry buffer: room for a few big calls being retried at once."""


def _load_service_config() -> Mapping[str, Any]:
    text = (
        resources.files("liveness_client._proto.liveness.v1")
        .joinpath("service_config.json")
        .read_text(encoding="utf-8")
    )
    config: Mapping[str, Any] = json.loads(text)
    return config


SERVICE_CONFIG: Mapping[str, Any] = _load_service_config()
"""The contract's service config, as shipped: pass your own with the ``grpc.service_config``
channel option to change it."""


def service_config_json() -> str:
    return json.dumps(SERVICE_CONFIG, separators=(",", ":"))


def channel_options(extra: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """The client's channel options; ``extra`` entries override the defaults by name."""
    options: dict[str, Any] = {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
        "grpc.enable_retries": 1,
        "grpc.service_config": service_config_json(),
        "grpc.per_rpc_retry_buffer_size": _PER_RPC_RETRY_BUFFER_BYTES,
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
