"""The ready file: a JSON file a process writes once it serves, for whoever started it.

With ``--port 0`` only the process knows which ports it bound. ``--ready-file PATH`` makes it
write them, with its pid, once it is ready (the gateway: health SERVING; the sandbox: its
port bound). The write is atomic (a temporary file renamed over ``PATH``), so a reader never
sees half a file; the file is removed when the process starts to stop. Scripts and tests wait
for it with :func:`wait` (or, from a shell, for the file to exist) instead of reading logs.

The gateway writes ``{"pid", "port", "metrics_port", "health_port", "workers", "vendors"}``
(ports that are off are ``null``; ``workers`` lists the worker pids under ``--workers N``, else
is empty; ``vendors`` maps each vendor to the base URL called); the sandbox writes ``{"pid",
"port", "url"}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liveness_gateway.vendors import VENDORS

if TYPE_CHECKING:
    from liveness_gateway.config import GatewayConfig

_POLL_S = 0.05


def write(path: str | os.PathLike[str], info: dict[str, Any]) -> None:
    """Write ``info`` as JSON to ``path`` atomically."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(info) + "\n", encoding="utf-8")
    os.replace(temporary, target)


def gateway_info(
    config: GatewayConfig,
    port: int,
    metrics_port: int | None,
    health_port: int | None,
    workers: Sequence[int] = (),
) -> dict[str, Any]:
    """What the gateway's ready file says: this process, its ports, its workers and the vendor
    URLs it calls (with ``--sandbox``, the embedded sandbox's)."""
    return {
        "pid": os.getpid(),
        "port": port,
        "metrics_port": metrics_port,
        "health_port": health_port,
        "workers": list(workers),
        "vendors": {name: config.vendor(name).base_url for name in VENDORS},
    }


def sandbox_info(port: int, url: str) -> dict[str, Any]:
    """What the sandbox's ready file says."""
    return {"pid": os.getpid(), "port": port, "url": url}


def remove(path: str | os.PathLike[str]) -> None:
    """Remove the ready file, if it is there: the process is no longer ready."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def wait(
    path: str | os.PathLike[str],
    *,
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
) -> dict[str, Any]:
    """Wait (bounded) for the ready file and return what it says.

    ``alive`` is polled too, so that a process that exits before it is ready fails at once
    rather than at the timeout. Raises TimeoutError or ChildProcessError.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(FileNotFoundError):
            info: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
            return info
        if not alive():
            raise ChildProcessError(f"the process exited before writing {path}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no ready file at {path} after {timeout_s:.0f}s")
        time.sleep(_POLL_S)
