"""Programs the system tests drive, found in one place: a missing one fails, never skips.

`make pytest` builds the Go tools into .tools/ and passes their paths in the environment
variables below; run by hand, the newest build in .tools/ (or the program on PATH) is used.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# name: (environment variable the Makefile sets, where `go install` puts it under .tools/)
_TOOLS: dict[str, tuple[str, str]] = {
    "toxiproxy": ("TOXIPROXY_SERVER", "toxiproxy-v*/server"),
    "grpcurl": ("GRPCURL", "grpcurl-v*/grpcurl"),
    "grpc-health-probe": ("GRPC_HEALTH_PROBE", "grpc-health-probe-v*/grpc-health-probe"),
    "helm": ("LIVENESS_HELM", "helm-v*/helm"),
    "otelcol": ("OTELCOL", "otelcol-tests-*/otelcol-tests"),  # built by mk/tracing.mk
    "redis-server": ("REDIS_SERVER", ""),  # Debian's package, mk/fleet.mk installs it
}


def find(name: str) -> str:
    """The path of ``name``: its environment variable, .tools/ or PATH; else the test fails."""
    var, pattern = _TOOLS.get(name, ("", ""))
    path = os.environ.get(var) if var else None
    if not path and pattern:
        built = sorted((ROOT / ".tools").glob(pattern))
        path = str(built[-1]) if built else None
    path = path or shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        how = f"set {var} or " if var else ""
        pytest.fail(f"{name} not found ({how}run the tests through `make test`, which installs it)")
    return path


async def promtool_check_metrics(
    promtool: str, exposition: str
) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` on a text exposition."""
    return await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def stop(proc: asyncio.subprocess.Process, timeout_s: float = 10.0) -> None:
    """SIGTERM an external program, then SIGKILL it if it has not exited in ``timeout_s``."""
    if proc.returncode is None:
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), timeout=timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
