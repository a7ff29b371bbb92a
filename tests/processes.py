"""Running the gateway as a real process, the way an operator does."""

from __future__ import annotations

import os


def clean_env() -> dict[str, str]:
    """This process' environment without any gateway or vendor settings (they would leak in)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LINKFACE_", "ACCUAUTH_", "LIVENESS_"))
    }
