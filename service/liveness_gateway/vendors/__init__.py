"""The vendor endpoints: one descriptor each (:class:`~.base.Endpoint`), listed here."""

from __future__ import annotations

from typing import Any

from liveness_gateway.vendors import accuauth, linkface
from liveness_gateway.vendors.base import Endpoint

ENDPOINTS: tuple[Endpoint[Any], ...] = (linkface.UPLOAD, linkface.DETECT, accuauth.ANTI_HACK)
BY_RPC: dict[str, Endpoint[Any]] = {e.rpc: e for e in ENDPOINTS}
VENDORS: tuple[str, ...] = tuple(dict.fromkeys(e.vendor for e in ENDPOINTS))

__all__ = ["BY_RPC", "ENDPOINTS", "VENDORS", "Endpoint"]
