"""Who is calling, may they call this RPC, and are they within their share.

Off unless a callers file is configured. A caller is identified by its mTLS client
certificate (a DNS SAN matching one of its ``cert_names``; a URI SAN only when the entry is
a URI such as ``spiffe://...``; the CN only when the certificate has no SAN) or by a bearer
token in the ``authorization`` metadata, matched against SHA-256 hashes (every caller's hash
is compared, in constant time, so timing tells nothing about which one almost matched).

The callers file is TOML::

    [[caller]]
    name = "checkout"                   # metric label and log field: keep it short
    token_sha256 = "9f86d08...e9a5"      # sha256 of the bearer token, hex (optional)
    cert_names = ["checkout.internal"]  # mTLS DNS SAN, or a URI SAN (optional)
    rpcs = ["Detect", "AntiHack"]       # or ["*"]
    rate_per_s = 20                     # token bucket (optional)
    burst = 40
    daily_quota = 50000                 # calls per UTC day (optional)

Rate limits and quotas live in the state store (liveness_gateway.state): with
``--state-url`` they are fleet-wide, the numbers above hold for all replicas and workers
together; without it each process keeps its own (configure ``limit / (replicas x workers)``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from liveness.v1 import liveness_pb2

from liveness_gateway import errors
from liveness_gateway.config import ConfigError
from liveness_gateway.state import CALLER_QUOTA, CALLER_RATE, DailyQuota, RateLimit, StateStore
from liveness_gateway.state.local import LocalStore

RPC_NAMES = tuple(m.name for m in liveness_pb2.DESCRIPTOR.services_by_name["LivenessCheck"].methods)
UNKNOWN_CALLER = "unknown"
ANONYMOUS = "anonymous"
"""The caller label when authentication is off."""

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Caller:
    name: str
    token_sha256: bytes | None = field(default=None, repr=False)
    cert_names: frozenset[str] = frozenset()
    rpcs: frozenset[str] = frozenset({"*"})
    rate_per_s: float | None = None
    burst: int = 1
    daily_quota: int | None = None

    def may_call(self, rpc: str) -> bool:
        return "*" in self.rpcs or rpc in self.rpcs


def load_callers(path: str | Path) -> tuple[Caller, ...]:
    """Read and check a callers file; every mistake is a one-line ConfigError."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"callers file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"callers file {path}: not valid TOML ({exc})") from None
    entries = raw.get("caller")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"callers file {path}: no [[caller]] entries")
    callers = tuple(_caller(entry, i) for i, entry in enumerate(entries))
    names = [c.name for c in callers]
    if len(set(names)) != len(names):
        raise ConfigError(f"callers file {path}: caller names must be unique")
    return callers


def _caller(entry: Any, index: int) -> Caller:
    where = f"caller #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: not a table")
    unknown = set(entry) - {
        "name", "token_sha256", "cert_names", "rpcs", "rate_per_s", "burst", "daily_quota",
    }  # fmt: skip
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (UNKNOWN_CALLER, ANONYMOUS):
        raise ConfigError(f"{where}: name must be a short lowercase word")
    token = entry.get("token_sha256")
    digest = None
    if token is not None:
        if not isinstance(token, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", token):
            raise ConfigError(f"{where} ({name}): token_sha256 must be 64 hex digits")
        digest = bytes.fromhex(token)
    cert_names = entry.get("cert_names", [])
    if not isinstance(cert_names, list) or not all(isinstance(n, str) and n for n in cert_names):
        raise ConfigError(f"{where} ({name}): cert_names must be a list of names")
    if digest is None and not cert_names:
        raise ConfigError(f"{where} ({name}): needs token_sha256 or cert_names")
    rpcs = entry.get("rpcs", ["*"])
    if not isinstance(rpcs, list) or not all(r == "*" or r in RPC_NAMES for r in rpcs):
        raise ConfigError(f"{where} ({name}): rpcs must list {', '.join(RPC_NAMES)} or '*'")
    rate = entry.get("rate_per_s")
    if rate is not None and (not isinstance(rate, int | float) or rate <= 0):
        raise ConfigError(f"{where} ({name}): rate_per_s must be a positive number")
    burst = entry.get("burst", max(1, int(rate or 1)))
    if not isinstance(burst, int) or burst < 1:
        raise ConfigError(f"{where} ({name}): burst must be a positive integer")
    quota = entry.get("daily_quota")
    if quota is not None and (not isinstance(quota, int) or quota < 1):
        raise ConfigError(f"{where} ({name}): daily_quota must be a positive integer")
    return Caller(
        name=name,
        token_sha256=digest,
        # DNS names compare without case (RFC 6125); URIs exactly.
        cert_names=frozenset(n if _is_uri(n) else n.lower() for n in cert_names),
        rpcs=frozenset(rpcs),
        rate_per_s=float(rate) if rate is not None else None,
        burst=burst,
        daily_quota=quota,
    )


def hash_token(token: str) -> str:
    """What goes into ``token_sha256`` for a bearer token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class CallerAuth:
    """Authentication, authorisation and per-caller limits (kept in ``store``)."""

    def __init__(
        self,
        callers: Iterable[Caller],
        *,
        on_decision: Callable[[str, str, str], None] | None = None,
        store: StateStore | None = None,
    ) -> None:
        self._callers = tuple(callers)
        self._on_decision = on_decision or (lambda caller, rpc, decision: None)
        store = store if store is not None else LocalStore()
        self._rates: dict[str, RateLimit] = {
            c.name: store.rate(CALLER_RATE, c.name, c.rate_per_s, c.burst)
            for c in self._callers
            if c.rate_per_s is not None
        }
        self._quotas: dict[str, DailyQuota] = {
            c.name: store.quota(CALLER_QUOTA, c.name, c.daily_quota)
            for c in self._callers
            if c.daily_quota is not None
        }

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._callers)

    def identify(self, context: grpc.aio.ServicerContext) -> Caller | None:
        """The caller behind this call, by client certificate first, then by bearer token."""
        cert_names = _peer_names(context.auth_context())
        if cert_names:
            for caller in self._callers:
                if caller.cert_names & cert_names:
                    return caller
        token = _bearer(context.invocation_metadata())
        if token is None:
            return None
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found = None
        for caller in self._callers:  # no early exit: same work whoever matches
            if caller.token_sha256 is not None and hmac.compare_digest(caller.token_sha256, digest):
                found = caller
        return found

    async def admit(self, context: grpc.aio.ServicerContext, rpc: str) -> str:
        """Identify, authorise and charge the caller; returns its name for logs and metrics."""
        caller = self.identify(context)
        if caller is None:
            self._on_decision(UNKNOWN_CALLER, rpc, "unauthenticated")
            raise errors.unauthenticated()
        if not caller.may_call(rpc):
            self._on_decision(caller.name, rpc, "denied")
            raise errors.permission_denied(caller.name, rpc)
        try:
            rate = self._rates.get(caller.name)
            if rate is not None:
                wait = await rate.take()
                if wait:
                    self._on_decision(caller.name, rpc, "rate_limited")
                    raise errors.caller_rate_limited(
                        caller.name, rate.rate_per_s, rate.burst, retry_delay_s=wait
                    )
            quota = self._quotas.get(caller.name)
            if quota is not None:
                wait = await quota.take()
                if wait:
                    self._on_decision(caller.name, rpc, "quota_exceeded")
                    raise errors.caller_quota_exceeded(caller.name, quota.limit, wait)
        except errors.GatewayError as err:
            if err.reason == errors.STATE_UNAVAILABLE:
                self._on_decision(caller.name, rpc, "state_unavailable")
            raise
        self._on_decision(caller.name, rpc, "admitted")
        return caller.name


def _peer_names(auth_context: Mapping[str, Iterable[bytes]] | None) -> frozenset[str]:
    """The client certificate's identities, as RFC 6125 reads them: its DNS names (lowercase)
    and URIs (``cert_names`` entries with ``://`` match those); the CN only when the
    certificate has no subjectAltName at all. E-mail and IP SANs are never identities."""
    if not auth_context:
        return frozenset()

    def texts(key: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in auth_context.get(key, ())]

    names = {n.lower() for n in texts("peer_dns") if not _is_uri(n)}
    names.update(u for u in texts("peer_uri") if _is_uri(u))
    if not texts("x509_subject_alternative_name"):
        names.update(n.lower() for n in texts("x509_common_name") if not _is_uri(n))
    return frozenset(names)


def _is_uri(name: str) -> bool:
    return "://" in name


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


__all__ = ["ANONYMOUS", "Caller", "CallerAuth", "hash_token", "load_callers"]
