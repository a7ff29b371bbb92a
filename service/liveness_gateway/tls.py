"""TLS and mTLS server credentials whose certificates are re-read when the files change.

gRPC asks the fetcher for a new configuration at every handshake; it answers ``None`` (keep
the current one) unless a file's modification time or size changed, so a rotated certificate
is served from the next connection on, without a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from liveness_gateway.config import ConfigError, TlsConfig

log = logging.getLogger(__name__)

Stamp = tuple[tuple[int, int], ...]


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"TLS {what} {path}: {exc.strerror}") from None


def _stamp(config: TlsConfig) -> Stamp:
    paths = [config.cert_file, config.key_file]
    if config.client_ca_file:
        paths.append(config.client_ca_file)
    stats = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return ()
        stats.append((st.st_mtime_ns, st.st_size))
    return tuple(stats)


def _certificate_configuration(config: TlsConfig) -> Any:
    key = _read(config.key_file, "key")
    cert = _read(config.cert_file, "certificate")
    ca = _read(config.client_ca_file, "client CA bundle") if config.client_ca_file else None
    return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


def server_credentials(config: TlsConfig) -> grpc.ServerCredentials:
    """Credentials for ``add_secure_port``; mTLS (client certificate required) with a CA."""
    current: list[Stamp] = [_stamp(config)]
    initial = _certificate_configuration(config)

    def fetch() -> Any:
        stamp = _stamp(config)
        if not stamp or stamp == current[0]:
            return None
        try:
            fresh = _certificate_configuration(config)
        except ConfigError as exc:  # a half-written file: keep serving the old pair
            log.warning("TLS files changed but cannot be read yet: %s", exc)
            return None
        current[0] = stamp
        log.info("TLS certificates reloaded from disk")
        return fresh

    fetcher: Callable[[], Any] = fetch
    return grpc.dynamic_ssl_server_credentials(
        initial, fetcher, require_client_authentication=config.client_ca_file is not None
    )
