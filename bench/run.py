"""The gateway against its limits: the no-op gRPC ceiling, the floor, direct HTTP to the sandbox.

Run by ``make bench`` (README.md beside this file says what is measured and how). Every
process listens on a free loopback port chosen here; every load run is bounded in time.
Writes results/latest.json, results/latest.md and results/latency.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = str(ROOT / ".venv" / "bin" / "python")
SANDBOX_ID, SANDBOX_SECRET = "sandbox-id", "sandbox-secret"
BOUNDARY = "lgbenchboundary7f3a9c"
KB = 1024
SIZES = {"1KB": KB, "64KB": 64 * KB, "1MB": 1024 * KB, "5MB": 5 * 1024 * KB}
# Requests in flight in the closed-loop (max throughput) runs, the same for all three paths.
CONCURRENCY = {"1KB": 16, "64KB": 16, "1MB": 8, "5MB": 4}
# The interleaved rounds (latency at one call in flight, RPS per core at 16) use these sizes.
ROUND_SIZES = ("1KB", "64KB")
ROUND_LOAD = 16
# Pinning: the servers under test on one core, the sandbox and the load generators on the other.
SERVER_CPU, LOAD_CPU = 0, 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = 1


@dataclass
class Cfg:
    ghz: str
    h2load: str
    duration_s: float
    rate_duration_s: float
    sweep: bool
    sizes: list[str]
    uvloop: bool
    scaling: bool
    out: Path
    otelcol: str | None = None
    rounds: int = 4
    round_duration_s: float = 3.0
    server_prefix: tuple[str, ...] = ()
    """``taskset -c 0`` when pinned: prepended to the servers' command lines."""
    load_prefix: tuple[str, ...] = ()
    """``taskset -c 1`` when pinned: the sandbox's and the load generators' command lines."""
    audit: bool = True
    """The audit trail run: off, async and strict on SQLite and PostgreSQL."""
    only_audit: bool = False


# --- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def base_env(uvloop: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVENESS_", "LINKFACE_"))}
    # BENCH_SERVICE_DIR: another checkout's service/ (an A/B of one optimisation).
    env["PYTHONPATH"] = os.environ.get("BENCH_SERVICE_DIR", str(ROOT / "service"))
    env["BENCH_UVLOOP"] = "1" if uvloop else "0"
    return env


def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (the --workers children)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                pids += tree(int(child))
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


THREAD_KINDS = ("loop", "python", "grpc")
"""How :func:`thread_cpu` sorts a server's threads: the main thread, where the asyncio loop
runs the handlers; the other Python threads (under load, grpc.aio's completion-queue poller);
and gRPC core's own threads (its EventEngine, which does the socket work)."""


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the threads of ``pid`` (and its workers), by :data:`THREAD_KINDS`."""
    out = dict.fromkeys(THREAD_KINDS, 0.0)
    for p in tree(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                if task.name == str(p):
                    kind = "loop"
                elif (task / "comm").read_text().startswith("python"):
                    kind = "python"
                else:
                    kind = "grpc"
                out[kind] += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def status_kb(pid: int, key: str) -> list[int]:
    values = []
    for p in tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    values.append(int(line.split()[1]))
    return values


def reset_peak(pid: int) -> None:
    for p in tree(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{p}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


# --- payloads ------------------------------------------------------------------------------


def payload(size: int) -> bytes:
    head = b"SANDBOX:score=0.5\n"  # a fixed score: the sandbox does not hash it for scoring
    return head + os.urandom(size - len(head))


def detect_request_bin(data: bytes) -> bytes:
    from liveness.v1 import liveness_pb2

    return liveness_pb2.DetectRequest(liveness_data=data).SerializeToString()


def multipart_body(data: bytes) -> bytes:
    """The same form the gateway sends to LinkFace's detect endpoint."""
    parts = []
    for name, value in (("api_id", SANDBOX_ID), ("api_secret", SANDBOX_SECRET)):
        parts.append(
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
            f'name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f"--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: "
        f'form-data; name="liveness_data_file"; filename="liveness_data"\r\n\r\n'.encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


# --- load generators -----------------------------------------------------------------------


def ghz_report(
    cfg: Cfg,
    port: int,
    body: Path,
    *,
    duration_s: float,
    concurrency: int,
    connections: int,
    deadline_s: float = 20.0,
    rps: float | None = None,
) -> dict[str, Any]:
    """One bounded ghz run of Detect with ``body`` (a serialized request): its JSON report."""
    argv = [
        *cfg.load_prefix,
        cfg.ghz,
        "--insecure",
        "--proto",
        str(ROOT / "protos/liveness/v1/liveness.proto"),
        "--import-paths",
        str(ROOT / "protos"),
        "--call",
        "liveness.v1.LivenessCheck/Detect",
        "-B",
        str(body),
        "-c",
        str(concurrency),
        "--connections",
        str(connections),
        "-z",
        f"{duration_s}s",
        "-t",
        f"{deadline_s}s",
        "--count-errors",
        "-O",
        "json",
        f"127.0.0.1:{port}",
    ]
    if rps is not None:
        argv[-1:-1] = ["--rps", str(max(1, int(rps)))]
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, timeout=duration_s + deadline_s + 60, check=False
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def ghz(
    cfg: Cfg,
    port: int,
    body: Path,
    *,
    duration_s: float,
    concurrency: int,
    rps: float | None = None,
) -> dict[str, Any]:
    report = ghz_report(
        cfg,
        port,
        body,
        duration_s=duration_s,
        concurrency=concurrency,
        connections=min(concurrency, 4),
        rps=rps,
    )
    lat = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    ok = report.get("statusCodeDistribution", {}).get("OK", 0)
    errors = {k: v for k, v in report.get("statusCodeDistribution", {}).items() if k != "OK"}
    return {
        "rps": ok / (report["total"] / 1e9) if report.get("total") else 0.0,
        "count": report.get("count", 0),
        "ok": ok,
        "errors": errors,
        "p50_ms": lat.get(50),
        "p99_ms": lat.get(99),
    }


def h2load(
    cfg: Cfg,
    port: int,
    body: Path,
    *,
    duration_s: float,
    concurrency: int,
    rps: float | None = None,
) -> dict[str, Any]:
    """HTTP/1.1 load on the sandbox with h2load; per-request latencies from its log files.

    At a fixed rate, h2load paces each client with its own timer and all timers start
    together, so c clients send in bursts of c (measured: p50 2.8 ms instead of 0.9 ms on
    64 KB at 100 RPS). The paced load is therefore several one-connection h2load processes,
    started at spread-out offsets, whose arrivals interleave like ghz's evenly spaced ones.
    """
    procs = min(concurrency, 4) if rps is not None else 1
    with tempfile.TemporaryDirectory() as logdir:
        running = []
        for i in range(procs):
            argv = [
                *cfg.load_prefix,
                cfg.h2load,
                "--h1",
                "-c",
                str(1 if rps is not None else concurrency),
                "-m",
                "1",
                "-D",
                str(int(max(1, duration_s))),
                "-d",
                str(body),
                "-H",
                f"content-type: multipart/form-data; boundary={BOUNDARY}",
                "--log-file",
                f"{logdir}/{i}.log",
                f"http://127.0.0.1:{port}/hackness/liveness_hack_detect",
            ]
            if rps is not None:
                argv[-1:-1] = ["--rps", f"{rps / procs:.3f}"]
                time.sleep(1 / rps)  # the next process starts between this one's requests
            running.append(
                subprocess.Popen(  # noqa: S603
                    argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
                )
            )
        walls = []
        for proc in running:
            out, _ = proc.communicate(timeout=duration_s + 60)
            for line in out.splitlines():
                if line.startswith("finished in"):
                    walls.append(_seconds(line.split()[2].rstrip(",")))
        lines = [
            ln.split("\t")
            for f in Path(logdir).glob("*.log")
            for ln in f.read_text().splitlines()
            if ln
        ]
    ok = sorted(int(f[2]) / 1000 for f in lines if f[1] == "200")
    errors = len(lines) - len(ok)
    wall = max(walls) if walls else duration_s
    return {
        "rps": len(ok) / wall if wall else 0.0,
        "count": len(lines),
        "ok": len(ok),
        "errors": {"http_non_200": errors} if errors else {},
        "p50_ms": _pct(ok, 50),
        "p99_ms": _pct(ok, 99),
    }


def _seconds(text: str) -> float:
    for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def _pct(sorted_ms: list[float], p: float) -> float | None:
    if not sorted_ms:
        return None
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * p / 100))]


# --- the run -------------------------------------------------------------------------------


def measured(pid: int, run: Any) -> tuple[dict[str, Any], float, int]:
    """Run a load, returning its result, the CPU cores the process tree used, peak RSS kB."""
    reset_peak(pid)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    result = run()
    cores = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    return result, cores, max(status_kb(pid, "VmHWM") or [0])


@contextlib.contextmanager
def start_gateway(
    cfg: Cfg,
    tmp: Path,
    sandbox_port: int,
    workers: int,
    name: str,
    extra_env: dict[str, str] | None = None,
    *,
    defaults: bool = False,
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The gateway on a free port, once every worker serves (its ready file): (process, port).
    ``defaults``: keep the gateway's own stream limit (slow_vendor.py)."""
    from liveness_gateway import readyfile

    env = {**base_env(cfg.uvloop), **(extra_env or {})}
    for vendor in ("LINKFACE", "ACCUAUTH"):
        env[f"{vendor}_BASE_URL"] = f"http://127.0.0.1:{sandbox_port}"
        env[f"{vendor}_API_ID"] = SANDBOX_ID
        env[f"{vendor}_API_SECRET"] = SANDBOX_SECRET
    # The load sweep goes past 16 calls in flight on one connection: the memory-bounding
    # stream limit (SECURITY.md) would queue them at the client, which the floor does not.
    if not defaults:
        env["LIVENESS_MAX_STREAMS_PER_CONNECTION"] = "1024"
    ready = tmp / f"{name}.ready.json"
    # One worker is pinned with the other servers under test; several get the whole machine.
    argv = [
        *(cfg.server_prefix if workers == 1 else ()),
        PY,
        str(HERE / "gateway_main.py"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        "0",
        "--workers",
        str(workers),
        "--ready-file",
        str(ready),
    ]
    with process(argv, env, tmp / f"{name}.log") as proc:
        info = readyfile.wait(ready, timeout_s=60, alive=lambda: proc.poll() is None)
        yield proc, int(info["port"])


def sandbox_process(
    port: int, env: dict[str, str], log: Path, prefix: tuple[str, ...] = ()
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """The vendor sandbox as its own process, so the gateway's CPU is measured alone."""
    argv = [PY, "-m", "liveness_gateway", "sandbox", "--host", "127.0.0.1", "--port", str(port)]
    return process([*prefix, *argv], env, log)


def run(cfg: Cfg) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="lg-bench-"))
    results: dict[str, Any] = {"sizes": {}, "config": {}}
    sandbox_port, ceiling_port, floor_port = free_port(), free_port(), free_port()
    env = base_env(cfg.uvloop)
    floor_env = {**env, "LINKFACE_API_ID": SANDBOX_ID, "LINKFACE_API_SECRET": SANDBOX_SECRET}
    sandbox = sandbox_process(sandbox_port, env, tmp / "sandbox.log", cfg.load_prefix)
    noop = HERE / "noop_server.py"
    pin = cfg.server_prefix
    ceiling = process([*pin, PY, str(noop), str(ceiling_port)], env, tmp / "noop.log")
    floor = process(
        [*pin, PY, str(noop), str(floor_port), f"http://127.0.0.1:{sandbox_port}"],
        floor_env,
        tmp / "floor.log",
    )
    if cfg.only_audit:
        results["audit"] = audit(cfg, tmp)
        return results
    gw_ctx = start_gateway(cfg, tmp, sandbox_port, 1, "gateway")
    with sandbox, ceiling as ceiling_proc, floor as floor_proc, gw_ctx as (gw, gw_port):
        for port in (sandbox_port, ceiling_port, floor_port):
            wait_port(port)
        targets = {
            "gateway": (gw.pid, gw_port),
            "ceiling": (ceiling_proc.pid, ceiling_port),
            "floor": (floor_proc.pid, floor_port),
        }
        files = {}
        for label in cfg.sizes:
            data = payload(SIZES[label])
            files[label] = (tmp / f"{label}.bin", tmp / f"{label}.multipart")
            files[label][0].write_bytes(detect_request_bin(data))
            files[label][1].write_bytes(multipart_body(data))
        # warm up every path once, then take the idle RSS
        warm = cfg.sizes[0]
        for _, port in targets.values():
            ghz(cfg, port, files[warm][0], duration_s=1, concurrency=2)
        h2load(cfg, sandbox_port, files[warm][1], duration_s=1, concurrency=2)
        time.sleep(0.5)
        results["idle_rss_mb"] = {
            "gateway": max(status_kb(gw.pid, "VmRSS")) / 1024,
            "ceiling": max(status_kb(ceiling_proc.pid, "VmRSS")) / 1024,
        }
        metrics_port = int(json.loads((tmp / "gateway.ready.json").read_text())["metrics_port"])
        results["rounds"] = rounds(cfg, files, targets, sandbox_port, metrics_port)
        print(json.dumps({"rounds": results["rounds"]["summary"]}), flush=True)
        for label in cfg.sizes:
            results["sizes"][label] = one_size(cfg, label, files[label], targets, sandbox_port)
            print(json.dumps({label: results["sizes"][label]}), flush=True)
        if cfg.sweep and "64KB" in cfg.sizes:
            results["sweep_64KB"] = sweep(
                cfg, files["64KB"], results["sizes"]["64KB"], targets, sandbox_port
            )
    if cfg.scaling:
        results["scaling"] = scaling(cfg, tmp, files, results)
    if cfg.otelcol:
        results["tracing"] = tracing(cfg, tmp, files)
    if cfg.audit:
        results["audit"] = audit(cfg, tmp)
    return results


def rounds(
    cfg: Cfg,
    files: dict[str, tuple[Path, Path]],
    targets: dict[str, tuple[int, int]],
    sandbox_port: int,
    gateway_metrics_port: int,
) -> dict[str, Any]:
    """Latency at one call in flight and RPS per core at 16, in interleaved rounds.

    Each round runs every path once per size, one after the other (the order rotates from
    round to round), so that a disturbance on the machine falls on all of them alike; the
    summary takes the median over the rounds of each figure, and of each round's ratios.
    """
    labels = [label for label in ROUND_SIZES if label in cfg.sizes]
    d = cfg.round_duration_s
    one = ["gateway", "floor", "ceiling", "direct"]
    loaded = ["gateway", "floor"]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        label: {f"{name}@1": [] for name in one} | {f"{name}@{ROUND_LOAD}": [] for name in loaded}
        for label in labels
    }
    for r in range(cfg.rounds):
        for label in labels:
            grpc_bin, multipart = files[label]
            plan = [(name, 1) for name in one] + [(name, ROUND_LOAD) for name in loaded]
            plan = plan[r % len(plan) :] + plan[: r % len(plan)]
            for name, conc in plan:
                if name == "direct":
                    res = h2load(cfg, sandbox_port, multipart, duration_s=d, concurrency=conc)
                else:
                    pid, port = targets[name]
                    shed_before = shed_total(gateway_metrics_port) if name == "gateway" else 0.0
                    threads_before = thread_cpu(pid)
                    res, cores, _ = measured(
                        pid,
                        lambda port=port, conc=conc, body=grpc_bin: ghz(
                            cfg, port, body, duration_s=d, concurrency=conc
                        ),
                    )
                    if name == "gateway":
                        res["shed"] = shed_total(gateway_metrics_port) - shed_before
                    res["cores"] = cores
                    res["cpu_ms_per_call"] = cores / res["rps"] * 1000 if res["rps"] else None
                    res["rps_per_core"] = res["rps"] / cores if cores else None
                    res["cpu_ms_by_thread"] = _by_thread(
                        threads_before, thread_cpu(pid), res["cpu_ms_per_call"]
                    )
                runs[label][f"{name}@{conc}"].append(res)
    summary: dict[str, Any] = {}
    for label in labels:
        by = runs[label]
        out: dict[str, Any] = {}
        for key, results in by.items():
            out[key] = {
                field: _median([x.get(field) for x in results])
                for field in ("p50_ms", "p99_ms", "rps", "cpu_ms_per_call", "rps_per_core")
            }
            p50s = [x["p50_ms"] for x in results if x.get("p50_ms") is not None]
            out[key]["p50_range_ms"] = [min(p50s), max(p50s)] if p50s else None
            out[key]["cpu_ms_by_thread"] = {
                kind: _median([(x.get("cpu_ms_by_thread") or {}).get(kind) for x in results])
                for kind in THREAD_KINDS
            }
        gap = [
            g["p50_ms"] - f["p50_ms"]
            for g, f in zip(by["gateway@1"], by["floor@1"], strict=True)
            if g.get("p50_ms") is not None and f.get("p50_ms") is not None
        ]
        per_core = [
            g["rps_per_core"] / f["rps_per_core"]
            for g, f in zip(by[f"gateway@{ROUND_LOAD}"], by[f"floor@{ROUND_LOAD}"], strict=True)
            if g.get("rps_per_core") and f.get("rps_per_core")
        ]
        out["gateway_minus_floor_p50_ms"] = _median(gap)
        out["gateway_minus_floor_p50_range_ms"] = [min(gap), max(gap)] if gap else None
        loaded_runs = by[f"gateway@{ROUND_LOAD}"]
        calls = sum(x.get("count", 0) for x in loaded_runs)
        out["gateway_shed_share"] = (
            sum(x.get("shed", 0.0) for x in loaded_runs) / calls if calls else None
        )
        out["gateway_over_floor_rps_per_core"] = _median(per_core)
        out["gateway_over_floor_rps_per_core_range"] = (
            [min(per_core), max(per_core)] if per_core else None
        )
        summary[label] = out
    return {"rounds": cfg.rounds, "duration_s": d, "summary": summary, "runs": runs}


def _by_thread(
    before: dict[str, float], after: dict[str, float], cpu_ms_per_call: float | None
) -> dict[str, float] | None:
    """The run's CPU per call split by thread kind, in proportion to each kind's CPU."""
    spent = {kind: after[kind] - before[kind] for kind in THREAD_KINDS}
    total = sum(spent.values())
    if not total or cpu_ms_per_call is None:
        return None
    return {kind: cpu_ms_per_call * spent[kind] / total for kind in THREAD_KINDS}


def metrics_text(metrics_port: int) -> str:
    """The gateway's /metrics page (loopback)."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()  # type: ignore[no-any-return]


def shed_total(metrics_port: int) -> float:
    """Calls the gateway has shed so far (``liveness_gateway_shed_total``, every cause): a
    closed-loop caller sends the next call at once, so shed calls take gateway CPU without
    adding to its RPS."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text(metrics_port).splitlines()
        if line.startswith("liveness_gateway_shed_total{")
    )


def _median(values: list[Any]) -> float | None:
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    mid = len(present) // 2
    return present[mid] if len(present) % 2 else (present[mid - 1] + present[mid]) / 2


def one_size(
    cfg: Cfg,
    label: str,
    files: tuple[Path, Path],
    targets: dict[str, tuple[int, int]],
    sandbox_port: int,
) -> dict[str, Any]:
    """Max RPS of the three gRPC servers and the direct path, then the paced runs."""
    grpc_bin, multipart = files
    conc = CONCURRENCY[label]
    d = cfg.duration_s
    gw_pid, gw_port = targets["gateway"]
    rss0 = max(status_kb(gw_pid, "VmRSS"))
    out: dict[str, Any] = {"concurrency": conc}
    hwm = rss0
    for name, (pid, port) in targets.items():
        res, cores, peak = measured(
            pid, lambda port=port: ghz(cfg, port, grpc_bin, duration_s=d, concurrency=conc)
        )
        out[name], out[f"{name}_cores"] = res, cores
        out[f"rps_per_{name}_core"] = res["rps"] / cores if cores else None
        if name == "gateway":
            hwm = peak
    direct = h2load(cfg, sandbox_port, multipart, duration_s=d, concurrency=conc)
    out["direct"] = direct
    in_flight = conc * SIZES[label]
    gw = out["gateway"]
    rate = gw["rps"] / 2
    rd = cfg.rate_duration_s
    paced = max(conc, 32)
    out.update(
        {
            "gateway_over_ceiling": _ratio(gw["rps"], out["ceiling"]["rps"]),
            "gateway_over_floor": _ratio(gw["rps"], out["floor"]["rps"]),
            "gateway_over_direct": _ratio(gw["rps"], direct["rps"]),
            "half_load_rps": rate,
            "gateway_at_half": ghz(
                cfg, gw_port, grpc_bin, duration_s=rd, concurrency=paced, rps=rate
            ),
            "floor_at_half": ghz(
                cfg, targets["floor"][1], grpc_bin, duration_s=rd, concurrency=paced, rps=rate
            ),
            "direct_at_half": h2load(
                cfg, sandbox_port, multipart, duration_s=rd, concurrency=conc, rps=rate
            ),
            "peak_rss_growth_mb": (hwm - rss0) / 1024,
            "in_flight_payload_mb": in_flight / 2**20,
            "rss_growth_per_in_flight_mb": (hwm - rss0) * 1024 / in_flight,
        }
    )
    for p in ("p50", "p99"):
        dd = out["direct_at_half"][f"{p}_ms"]
        for name in ("gateway", "floor"):
            g = out[f"{name}_at_half"][f"{p}_ms"]
            key = f"added_{p}_ms" if name == "gateway" else f"floor_added_{p}_ms"
            out[key] = g - dd if g is not None and dd is not None else None
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def sweep(
    cfg: Cfg,
    files: tuple[Path, Path],
    at64: dict[str, Any],
    targets: dict[str, tuple[int, int]],
    sandbox_port: int,
) -> list[dict[str, Any]]:
    points = []
    peak = at64["gateway"]["rps"]
    for frac in (0.1, 0.25, 0.5, 0.75, 0.9, 1.1):
        rate = peak * frac
        d = cfg.rate_duration_s
        point: dict[str, Any] = {"offered_rps": rate}
        for name, (_, port) in targets.items():
            point[name] = ghz(cfg, port, files[0], duration_s=d, concurrency=64, rps=rate)
        point["direct"] = h2load(
            cfg, sandbox_port, files[1], duration_s=d, concurrency=16, rps=rate
        )
        points.append(point)
    return points


def scaling(
    cfg: Cfg, tmp: Path, files: dict[str, tuple[Path, Path]], results: dict[str, Any]
) -> dict[str, Any]:
    """64 KB max throughput with --workers 1 and 2 (fresh gateways, sandbox as before)."""
    label = "64KB" if "64KB" in cfg.sizes else cfg.sizes[0]
    sandbox_port = free_port()
    out: dict[str, Any] = {"payload": label}
    sandbox = sandbox_process(sandbox_port, base_env(cfg.uvloop), tmp / "sandbox2.log")
    with sandbox:
        wait_port(sandbox_port)
        for workers in (1, 2):
            ctx = start_gateway(cfg, tmp, sandbox_port, workers, f"gateway-w{workers}")
            with ctx as (gw, port):
                ghz(cfg, port, files[label][0], duration_s=1, concurrency=4)
                res, cores, _ = measured(
                    gw.pid,
                    lambda port=port: ghz(
                        cfg, port, files[label][0], duration_s=cfg.duration_s, concurrency=32
                    ),
                )
                out[f"workers_{workers}"] = {**res, "gateway_cores": cores}
    out["speedup"] = out["workers_2"]["rps"] / out["workers_1"]["rps"]
    return out


# Tracing modes: none (no OTLP endpoint), 1% and 100% of root calls (ghz sends no traceparent,
# so the ratio sampler decides every call).
TRACING_MODES: dict[str, dict[str, str]] = {
    "off": {},
    "1%": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "100%": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}


@contextlib.contextmanager
def collector(cfg: Cfg, tmp: Path) -> Iterator[int]:
    """The OpenTelemetry Collector of the tests (OTLP/gRPC in, a JSON file out)."""
    assert cfg.otelcol
    port = free_port()
    config = tmp / "otelcol.yaml"
    config.write_text(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n"
        f"        endpoint: 127.0.0.1:{port}\n"
        f"exporters:\n  file:\n    path: {tmp / 'spans.jsonl'}\n"
        "service:\n  telemetry:\n    metrics:\n      level: none\n"
        "  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [file]\n"
    )
    with process([cfg.otelcol, f"--config={config}"], dict(os.environ), tmp / "otelcol.log"):
        wait_port(port)
        yield port


def tracing(cfg: Cfg, tmp: Path, files: dict[str, tuple[Path, Path]]) -> dict[str, Any]:
    """1 KB Detect (where per-call overhead shows most) with tracing off, at 1% and at 100%:
    max RPS per gateway core, and p50 at one fixed rate (half the untraced max) against the
    direct path at that rate. Fresh gateway per mode; the collector's CPU is not counted."""
    label = "1KB" if "1KB" in files else next(iter(files))
    grpc_bin, multipart = files[label]
    sandbox_port = free_port()
    out: dict[str, Any] = {"payload": label}
    with (
        sandbox_process(sandbox_port, base_env(cfg.uvloop), tmp / "sandbox3.log"),
        collector(cfg, tmp) as otlp_port,
    ):
        wait_port(sandbox_port)
        rate = None
        for mode, sampler in TRACING_MODES.items():
            extra = {}
            if mode != "off":
                extra = {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
                    **sampler,
                }
            name = f"gateway-tracing-{mode.rstrip('%')}"
            ctx = start_gateway(cfg, tmp, sandbox_port, 1, name, extra)
            with ctx as (gw, port):
                ghz(cfg, port, grpc_bin, duration_s=1, concurrency=4)
                res, cores, _ = measured(
                    gw.pid,
                    lambda port=port: ghz(
                        cfg, port, grpc_bin, duration_s=cfg.duration_s, concurrency=16
                    ),
                )
                if rate is None:
                    rate = res["rps"] / 2
                paced = ghz(
                    cfg, port, grpc_bin, duration_s=cfg.rate_duration_s, concurrency=32, rps=rate
                )
            direct = h2load(
                cfg,
                sandbox_port,
                multipart,
                duration_s=cfg.rate_duration_s,
                concurrency=16,
                rps=rate,
            )
            p50, d50 = paced["p50_ms"], direct["p50_ms"]
            out[mode] = {
                "rps": res["rps"],
                "cores": cores,
                "rps_per_core": res["rps"] / cores if cores else None,
                "paced_rps": rate,
                "p50_ms": p50,
                "direct_p50_ms": d50,
                "added_p50_ms": p50 - d50 if p50 is not None and d50 is not None else None,
            }
            print(json.dumps({"tracing": {mode: out[mode]}}), flush=True)
    return out


AUDIT_MODES = (
    ("off", None, None),
    ("async sqlite", "sqlite", "async"),
    ("strict sqlite", "sqlite", "strict"),
    ("async postgresql", "postgresql", "async"),
    ("strict postgresql", "postgresql", "strict"),
)


def audit(cfg: Cfg, tmp: Path) -> dict[str, Any]:
    """1 KB Detect (where a per-call cost shows most) with the audit trail off, async and
    strict, on SQLite (a file on the same disk) and on PostgreSQL (a local cluster made with
    initdb, on a Unix socket, not pinned: a database is another host's in production, and
    pinned to the load core its every commit waited for CPU behind the sandbox and ghz; see
    bench/README.md): max RPS per gateway core at 16
    in flight, and p50/p99 paced at half the audit-off max. One gateway per mode, all started
    together; interleaved rounds in a rotating order, medians over the rounds (a shared
    machine drifts: the modes of one round see the same weather). The database's own CPU is
    not counted."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres import running_postgres

    label = "1KB"
    grpc_bin = tmp / "audit-1KB.bin"
    grpc_bin.write_bytes(detect_request_bin(payload(SIZES[label])))
    sandbox_port = free_port()
    per_round: dict[str, list[dict[str, Any]]] = {mode: [] for mode, _, _ in AUDIT_MODES}
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            sandbox_process(
                sandbox_port, base_env(cfg.uvloop), tmp / "sandbox-audit.log", cfg.load_prefix
            )
        )
        postgres = stack.enter_context(running_postgres())
        wait_port(sandbox_port)
        gateways: dict[str, tuple[int, int]] = {}
        for mode, store, durability in AUDIT_MODES:
            extra: dict[str, str] = {}
            slug = mode.replace(" ", "-")
            if store is not None and durability is not None:
                data = tmp / f"audit-{slug}"
                url = postgres.url() if store == "postgresql" else f"sqlite:{data}/audit.db"
                extra = {
                    "LIVENESS_AUDIT_URL": url,
                    "LIVENESS_AUDIT_DURABILITY": durability,
                    "LIVENESS_AUDIT_JOURNAL_DIR": str(data / "journal"),
                }
            gw, port = stack.enter_context(
                start_gateway(cfg, tmp, sandbox_port, 1, f"gateway-audit-{slug}", extra)
            )
            gateways[mode] = (gw.pid, port)
            ghz(cfg, port, grpc_bin, duration_s=1, concurrency=4)  # warm
        off_pid, off_port = gateways["off"]
        warm, _, _ = measured(
            off_pid,
            lambda: ghz(cfg, off_port, grpc_bin, duration_s=cfg.round_duration_s, concurrency=16),
        )
        rate = warm["rps"] / 2
        modes = [mode for mode, _, _ in AUDIT_MODES]
        for index in range(cfg.rounds):
            order = modes[index % len(modes) :] + modes[: index % len(modes)]
            for mode in order:
                pid, port = gateways[mode]
                res, cores, _ = measured(
                    pid,
                    lambda port=port: ghz(
                        cfg, port, grpc_bin, duration_s=cfg.round_duration_s, concurrency=16
                    ),
                )
                paced = ghz(
                    cfg, port, grpc_bin, duration_s=cfg.round_duration_s, concurrency=32, rps=rate
                )
                per_round[mode].append(
                    {
                        "rps": res["rps"],
                        "rps_per_core": res["rps"] / cores if cores else None,
                        "p50_ms": paced["p50_ms"],
                        "p99_ms": paced["p99_ms"],
                    }
                )
            print(json.dumps({"audit_round": index, "done": True}), flush=True)
    out: dict[str, Any] = {"payload": label, "paced_rps": rate, "rounds": cfg.rounds}
    out["modes"] = {}
    base: dict[str, Any] = {}
    for mode in per_round:
        runs = per_round[mode]
        figures: dict[str, Any] = {
            key: _median([r[key] for r in runs if r[key] is not None])
            for key in ("rps", "rps_per_core", "p50_ms", "p99_ms")
        }
        figures["runs"] = runs
        if mode == "off":
            base = figures
        else:
            figures["rps_per_core_vs_off"] = _ratio(
                figures["rps_per_core"] or 0.0, base["rps_per_core"] or 0.0
            )
            for p in ("p50_ms", "p99_ms"):
                if figures[p] is not None and base[p] is not None:
                    figures[f"added_{p}"] = figures[p] - base[p]
        out["modes"][mode] = figures
        print(json.dumps({"audit": {mode: {k: v for k, v in figures.items() if k != "runs"}}}))
    return out


def _audit_markdown(res: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## Audit trail ({res['payload']} Detect; medians of {res['rounds']} interleaved rounds; "
        f"paced at {res['paced_rps']:.0f} RPS, half the audit-off max)",
        "",
        "| mode | max RPS | RPS per core | vs off | p50 ms | p99 ms | added p50 ms "
        "| added p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, f in res["modes"].items():
        lines.append(
            f"| {mode} | {_f(f['rps'])} | {_f(f['rps_per_core'])} | "
            f"{_f(f.get('rps_per_core_vs_off'), '{:.0%}')} | {_f(f['p50_ms'], '{:.2f}')} | "
            f"{_f(f['p99_ms'], '{:.2f}')} | {_f(f.get('added_p50_ms'), '{:+.2f}')} | "
            f"{_f(f.get('added_p99_ms'), '{:+.2f}')} |"
        )
    return lines


# --- reporting -----------------------------------------------------------------------------


def versions(cfg: Cfg) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    pkgs: dict[str, str | None] = {}
    for name in (
        "grpcio",
        "aiohttp",
        "httptools",
        "protobuf",
        "prometheus-client",
        "uvloop",
        "orjson",
    ):
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pkgs[name] = None
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    ghz_done = subprocess.run([cfg.ghz, "--version"], capture_output=True, text=True)  # noqa: S603
    ghz_v = (ghz_done.stdout or ghz_done.stderr).strip()
    if ghz_v in ("", "dev"):  # `go install` builds carry no version; the folder names it
        ghz_v = Path(cfg.ghz).parent.name
    h2_v = subprocess.run([cfg.h2load, "--version"], capture_output=True, text=True).stdout  # noqa: S603
    commit = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "machine": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "kernel": platform.release(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        },
        "python": platform.python_version(),
        "packages": pkgs,
        "ghz": ghz_v,
        "h2load": h2_v.splitlines()[0] if h2_v else None,
        "commit": commit,
        "event_loop": "uvloop" if cfg.uvloop else "asyncio",
    }


def _f(value: Any, fmt: str = "{:.0f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def markdown(res: dict[str, Any]) -> str:
    v = res["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {v['machine']['cpu']}, {v['machine']['cores']} cores, "
        f"{v['machine']['memory_gb']} GB, Linux {v['machine']['kernel']}. Python {v['python']}, "
        + ", ".join(f"{k} {x}" for k, x in v["packages"].items())
        + f"; {v['ghz']}, {v['h2load']}; event loop {v['event_loop']}; "
        f"commit {v['commit']}; mode {res['mode']}; {res['date']}; load average "
        f"{res['loadavg_1m_before_after'][0]:.2f} before, {res['loadavg_1m_before_after'][1]:.2f} "
        "after.",
        "",
        "Ceiling: a grpc.aio server that answers at once. Floor: the same server whose Detect "
        "makes the plainest aiohttp POST of the vendor form as one bytes body. "
        + (
            f"Gateway, ceiling and floor pinned to CPU {SERVER_CPU}, the sandbox and the load "
            f"generators to CPU {LOAD_CPU} (taskset)."
            if res["pinned"]
            else "Not pinned: all processes share the machine's cores."
        ),
        "",
    ]
    lines += _rounds_markdown(res["rounds"])
    lines += [
        "Throughput and latency at half load (one run each):",
        "",
        "| payload | conc. | gateway RPS | gateway cores | RPS / core | ceiling RPS "
        "| ceiling RPS / core | floor RPS | floor RPS / core | direct RPS "
        "| gw/ceiling | gw/floor | gw/direct | half-load RPS | added p50 ms | added p99 ms "
        "| RSS growth / in-flight |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s in res["sizes"].items():
        lines.append(
            f"| {label} | {s['concurrency']} | {_f(s['gateway']['rps'])} "
            f"| {_f(s['gateway_cores'], '{:.2f}')} | {_f(s['rps_per_gateway_core'])} "
            f"| {_f(s['ceiling']['rps'])} | {_f(s['rps_per_ceiling_core'])} "
            f"| {_f(s['floor']['rps'])} | {_f(s['rps_per_floor_core'])} "
            f"| {_f(s['direct']['rps'])} "
            f"| {_f(s['gateway_over_ceiling'], '{:.0%}')} "
            f"| {_f(s['gateway_over_floor'], '{:.0%}')} "
            f"| {_f(s['gateway_over_direct'], '{:.0%}')} "
            f"| {_f(s['half_load_rps'])} | {_f(s['added_p50_ms'], '{:.2f}')} "
            f"| {_f(s['added_p99_ms'], '{:.2f}')} "
            f"| {_f(s['rss_growth_per_in_flight_mb'], '{:.2f}x')} |"
        )
    lines += [
        "",
        "Latency at half load (ms, p50 / p99):",
        "",
        "| payload | gateway | floor | direct | floor added over direct |",
        "|---|---|---|---|---|",
    ]
    for label, s in res["sizes"].items():
        g, fl, d = s["gateway_at_half"], s["floor_at_half"], s["direct_at_half"]
        lines.append(
            f"| {label} | {_f(g['p50_ms'], '{:.2f}')} / {_f(g['p99_ms'], '{:.2f}')} "
            f"| {_f(fl['p50_ms'], '{:.2f}')} / {_f(fl['p99_ms'], '{:.2f}')} "
            f"| {_f(d['p50_ms'], '{:.2f}')} / {_f(d['p99_ms'], '{:.2f}')} "
            f"| {_f(s['floor_added_p50_ms'], '{:.2f}')} / "
            f"{_f(s['floor_added_p99_ms'], '{:.2f}')} |"
        )
    idle = res["idle_rss_mb"]
    sc = res.get("scaling")
    lines += [
        "",
        f"Idle RSS: gateway {idle['gateway']:.1f} MB, no-op ceiling {idle['ceiling']:.1f} MB.",
        "",
    ]
    tr = res.get("tracing")
    if tr:
        lines += [
            f"Tracing ({tr['payload']}, 16 in flight; p50 paced at "
            f"{tr['off']['paced_rps']:.0f} RPS, added = gateway p50 - direct p50 at that rate):",
            "",
            "| tracing | RPS | cores | RPS / core | p50 ms | added p50 ms |",
            "|---|---|---|---|---|---|",
        ]
        for mode in TRACING_MODES:
            t = tr[mode]
            lines.append(
                f"| {mode} | {_f(t['rps'])} | {_f(t['cores'], '{:.2f}')} "
                f"| {_f(t['rps_per_core'])} | {_f(t['p50_ms'], '{:.2f}')} "
                f"| {_f(t['added_p50_ms'], '{:.2f}')} |"
            )
        lines.append("")
    if not sc:
        return "\n".join(lines)
    lines += [
        f"Workers ({sc['payload']}, 32 in flight): 1 process {sc['workers_1']['rps']:.0f} RPS "
        f"({sc['workers_1']['gateway_cores']:.2f} cores), 2 processes "
        f"{sc['workers_2']['rps']:.0f} RPS ({sc['workers_2']['gateway_cores']:.2f} cores): "
        f"{sc['speedup']:.2f}x.",
        "",
    ]
    return "\n".join(lines)


def _rounds_markdown(rounds: dict[str, Any]) -> list[str]:
    def ms(fig: dict[str, Any]) -> str:
        return f"{_f(fig['p50_ms'], '{:.2f}')} / {_f(fig['p99_ms'], '{:.2f}')}"

    def span(pair: list[float] | None, fmt: str) -> str:
        return "n/a" if not pair else f"{fmt.format(pair[0])} to {fmt.format(pair[1])}"

    load = ROUND_LOAD
    lines = [
        f"At one call in flight (ms, p50 / p99; medians of {rounds['rounds']} interleaved rounds "
        f"of {rounds['duration_s']:g} s each; CPU is the server's, per call):",
        "",
        "| payload | gateway | floor | ceiling | direct | gateway minus floor p50 (range) "
        "| gateway p50 range | floor p50 range | gateway CPU ms | floor CPU ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s in rounds["summary"].items():
        g, f = s["gateway@1"], s["floor@1"]
        lines.append(
            f"| {label} | {ms(g)} | {ms(f)} | {ms(s['ceiling@1'])} | {ms(s['direct@1'])} "
            f"| {_f(s['gateway_minus_floor_p50_ms'], '{:+.2f}')} "
            f"({span(s['gateway_minus_floor_p50_range_ms'], '{:+.2f}')}) "
            f"| {span(g['p50_range_ms'], '{:.2f}')} | {span(f['p50_range_ms'], '{:.2f}')} "
            f"| {_f(g['cpu_ms_per_call'], '{:.3f}')} | {_f(f['cpu_ms_per_call'], '{:.3f}')} |"
        )
    lines += [
        "",
        f"Under load ({load} in flight, closed loop; medians of the same rounds):",
        "",
        "| payload | gateway RPS | gateway RPS / core | floor RPS | floor RPS / core "
        "| gateway/floor RPS per core (range) | gateway calls shed |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, s in rounds["summary"].items():
        g, f = s[f"gateway@{load}"], s[f"floor@{load}"]
        lines.append(
            f"| {label} | {_f(g['rps'])} | {_f(g['rps_per_core'])} | {_f(f['rps'])} "
            f"| {_f(f['rps_per_core'])} "
            f"| {_f(s['gateway_over_floor_rps_per_core'], '{:.0%}')} "
            f"({span(s['gateway_over_floor_rps_per_core_range'], '{:.0%}')}) "
            f"| {_f(s.get('gateway_shed_share'), '{:.1%}')} |"
        )
    lines += [
        "",
        "Shed: calls the gateway refused at once (its adaptive vendor concurrency limit, "
        'README "Vendor concurrency"), as a share of the calls ghz sent it in those runs; '
        "the floor has no limit. A closed-loop caller resends at once, so shed calls spend "
        "gateway CPU without adding to its RPS.",
        "",
        "CPU per call under load by thread (ms; medians of the same rounds): the event loop "
        "(the main thread, where the handlers run), the other Python threads (grpc.aio's "
        "completion-queue poller) and gRPC core's threads (its EventEngine: the sockets).",
        "",
        "| payload | server | event loop | other Python threads | gRPC core threads | all |",
        "|---|---|---|---|---|---|",
    ]
    for label, s in rounds["summary"].items():
        for name in ("gateway", "floor"):
            fig = s[f"{name}@{load}"]
            by = fig.get("cpu_ms_by_thread") or {}
            cells = " | ".join(_f(by.get(kind), "{:.3f}") for kind in THREAD_KINDS)
            lines.append(f"| {label} | {name} | {cells} | {_f(fig['cpu_ms_per_call'], '{:.3f}')} |")
    return [*lines, ""]


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = res.get("sweep_64KB")
    if not points:
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for key, color in (("gateway", "C0"), ("floor", "C3"), ("ceiling", "C2"), ("direct", "C1")):
        xs = [p["offered_rps"] for p in points]
        for pct, style in (("p50_ms", "-"), ("p99_ms", "--")):
            ys = [p[key][pct] for p in points]
            ax.plot(xs, ys, style, color=color, marker="o", label=f"{key} {pct[:3]}")
    ax.set_xlabel("offered load (requests/s), 64 KB payloads")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("Detect latency against offered load")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ghz", required=True)
    parser.add_argument("--h2load", default="h2load")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument(
        "--uvloop", action="store_true", help="run gateway and no-op server on uvloop"
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1 vs 2 workers run")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument(
        "--otelcol", help="an OpenTelemetry Collector binary: adds the tracing off/1%%/100%% run"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 6, quick 3)")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin servers and load to separate cores"
    )
    parser.add_argument(
        "--no-audit", action="store_true", help="skip the audit trail run (needs PostgreSQL)"
    )
    parser.add_argument("--only-audit", action="store_true", help="the audit trail run alone")
    args = parser.parse_args()
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    cfg = Cfg(
        ghz=args.ghz,
        h2load=args.h2load,
        duration_s=3.0 if args.quick else 8.0,
        rate_duration_s=3.0 if args.quick else 6.0,
        sweep=not args.quick,
        sizes=args.sizes.split(","),
        uvloop=args.uvloop,
        scaling=not args.no_scaling,
        out=Path(args.out),
        otelcol=args.otelcol,
        rounds=args.rounds or (3 if args.quick else 6),
        round_duration_s=2.0 if args.quick else 3.0,
        server_prefix=("taskset", "-c", str(SERVER_CPU)) if pin else (),
        load_prefix=("taskset", "-c", str(LOAD_CPU)) if pin else (),
        audit=not args.no_audit,
        only_audit=args.only_audit,
    )
    started = time.time()
    load_before = os.getloadavg()
    res = run(cfg)
    res["loadavg_1m_before_after"] = [load_before[0], os.getloadavg()[0]]
    res["mode"] = "quick" if args.quick else "full"
    res["pinned"] = pin
    res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    res["wall_s"] = round(time.time() - started, 1)
    res["versions"] = versions(cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "latest.json").write_text(json.dumps(res, indent=2) + "\n")
    if cfg.only_audit:
        md = "\n".join(
            ["# Benchmark results: the audit trail alone", *_audit_markdown(res["audit"])]
        )
    else:
        md = markdown(res) + "\n".join(_audit_markdown(res["audit"]) if "audit" in res else [])
        plot(res, cfg.out / "latency.png")
    (cfg.out / "latest.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
