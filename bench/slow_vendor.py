"""The slow-vendor scenario: what the vendor concurrency limit does with many callers.

Run by ``make bench`` after bench/run.py, or alone with ``make bench-slow-vendor``
(README.md beside this file, "Slow vendor"). Two cases, each with the gateway's defaults
(one process; none of run.py's raised stream limit) and each once per concurrency mode
(``--vendor-concurrency fixed`` is the cap of 64 per vendor that main had, ``adaptive`` the
default now):

(a) ample capacity: the sandbox answers every call after 1 s (the ``delay_ms`` vector, so
    the same payload measures a checkout without the capacity mode: BENCH_SERVICE_DIR);
    500 callers: the share of calls served;
(b) limited capacity: ``liveness-gateway sandbox --latency-ms 200 --capacity 20`` (20
    workers of 200 ms: at most 100 calls/s); 200 calls/s offered by 500 callers (ghz
    ``--rps``): the sandbox's own latency against its unloaded latency, and how fast the
    excess is refused.

Load: ghz, ``-c 500 --connections 32`` (the gateway's --max-connections; about 16 callers
on each, within its --max-streams-per-connection), 256 KiB Detect payloads, 20 s
(``--duration``), the clients' 20 s deadline; ``SLOW_VENDOR_CALLERS`` changes the 500.
Writes results/slow_vendor.json and results/slow_vendor.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # bench/ is not a package
    HERE,
    LOAD_CPU,
    PY,
    ROOT,
    SERVER_CPU,
    Cfg,
    _pct,
    base_env,
    detect_request_bin,
    free_port,
    ghz_report,
    metrics_text,
    process,
    start_gateway,
    wait_port,
)

KIB = 1024
CALLERS = int(os.environ.get("SLOW_VENDOR_CALLERS", "500"))
CONNECTIONS = 32
PAYLOAD_BYTES = 256 * KIB
DEADLINE_S = 20
SLOW_MS = 1000
CAPACITY, CAPACITY_LATENCY_MS = 20, 200
OFFERED_RPS = 2 * CAPACITY * 1000 // CAPACITY_LATENCY_MS
"""Case (b): twice what the vendor can take (open loop: a shed call is not resent at once,
so the load is not multiplied by the gateway's own refusals)."""
SETTLE_S = 5.0
"""Case (b): the sandbox's latency is reported for the first seconds and for the rest."""
MODES = ("fixed", "adaptive")
SHED_TEXTS = ("concurrency limit", "too many calls in flight")
CUT_TEXTS = ("use of closed network connection", "the client connection is closing")
"""ghz closes its connections at the end of the run: the calls still in flight end so."""


def payload(head: bytes) -> bytes:
    return head + os.urandom(PAYLOAD_BYTES - len(head))


def load(
    cfg: Cfg, port: int, body: Path, duration_s: float, rps: int | None = None
) -> dict[str, Any]:
    """500 callers for ``duration_s`` (closed loop, or ``rps`` calls a second shared among
    them): every call's status and latency (ghz's details)."""
    report = ghz_report(
        cfg,
        port,
        body,
        duration_s=duration_s,
        concurrency=CALLERS,
        connections=CONNECTIONS,
        deadline_s=DEADLINE_S,
        rps=rps,
    )
    served, shed, other = [], [], []
    cut = 0
    errors: dict[str, int] = {}
    for d in report.get("details") or []:
        ms = d["latency"] / 1e6
        if d.get("status") == "OK":
            served.append(ms)
            continue
        text = d.get("error") or d.get("status") or "?"
        if any(s in text for s in CUT_TEXTS):
            cut += 1
            continue
        if any(s in text for s in SHED_TEXTS):
            shed.append(ms)
            key = "shed (OVERLOADED)"
        else:
            other.append(ms)
            key = f"{d.get('status')}: {text.split(': read tcp')[0][:160]}"
        errors[key] = errors.get(key, 0) + 1
    served.sort()
    shed.sort()
    total = len(served) + len(shed) + len(other)
    wall = report.get("total", 0) / 1e9
    return {
        "calls": total,
        "cut_at_end": cut,
        "served": len(served),
        "shed": len(shed),
        "other_errors": len(other),
        "errors": errors,
        "served_share": len(served) / total if total else None,
        "served_per_s": len(served) / wall if wall else None,
        "served_p50_ms": _pct(served, 50),
        "served_p99_ms": _pct(served, 99),
        "shed_p50_ms": _pct(shed, 50),
        "shed_p99_ms": _pct(shed, 99),
    }


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310  (loopback)
        return json.loads(resp.read())


def gauges(metrics_port: int) -> dict[str, Any]:
    """The gateway's vendor concurrency limits, shed counts and the latency of the vendor's
    answers as the gateway measured them (histogram buckets: upper bounds), from /metrics."""
    text = metrics_text(metrics_port)
    found: dict[str, Any] = {}
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("liveness_gateway_vendor_request_duration_seconds_bucket{") and (
            'endpoint="liveness_hack_detect"' in line and 'outcome="ok"' in line
        ):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
        if line.startswith(
            ("liveness_gateway_vendor_concurrency_limit{", "liveness_gateway_shed_total{")
        ) and ('liveness_hack_detect"' in line or "cause=" in line):
            name, value = line.rsplit(" ", 1)
            if float(value):
                found[name] = float(value)
    total = buckets[-1][1] if buckets else 0
    for p in (50, 99):
        found[f"vendor_ok_p{p}_le_s"] = next(
            (le for le, n in buckets if total and n >= total * p / 100), None
        )
    return found


def one_run(
    cfg: Cfg,
    tmp: Path,
    mode: str,
    body: Path,
    sandbox_args: list[str],
    name: str,
    cfg_env: dict[str, str],
    rps: int | None,
) -> dict[str, Any]:
    sandbox_port = free_port()
    argv = [PY, "-m", "liveness_gateway", "sandbox", "--host", "127.0.0.1"]
    argv += ["--port", str(sandbox_port), *sandbox_args]
    sandbox = process([*cfg.load_prefix, *argv], base_env(cfg.uvloop), tmp / f"{name}.sb.log")
    extra = {**cfg_env, "LIVENESS_VENDOR_CONCURRENCY": mode}
    with sandbox:
        wait_port(sandbox_port)
        stats_url = f"http://127.0.0.1:{sandbox_port}/_sandbox/stats"
        with start_gateway(cfg, tmp, sandbox_port, 1, name, extra, defaults=True) as (_, port):
            info = json.loads((tmp / f"{name}.ready.json").read_text())
            # unloaded: a few calls one at a time
            for _ in range(3):
                warm = subprocess.run(  # noqa: S603
                    [
                        cfg.ghz, "--insecure", "--proto",
                        str(ROOT / "protos/liveness/v1/liveness.proto"),
                        "--import-paths", str(ROOT / "protos"),
                        "--call", "liveness.v1.LivenessCheck/Detect", "-B", str(body),
                        "-c", "1", "-n", "1", "-O", "json", f"127.0.0.1:{port}",
                    ],
                    capture_output=True, timeout=60, check=False,
                )  # fmt: skip
                assert warm.returncode == 0, warm.stderr
            unloaded = get_json(stats_url + "?reset=latency").get("latency", {})
            early: dict[str, Any] = {}

            def settle() -> None:
                time.sleep(SETTLE_S)
                early.update(get_json(stats_url + "?reset=latency").get("latency", {}))

            series: list[float] = []
            done = threading.Event()

            def poll() -> None:  # the limit once a second
                while not done.wait(1.0):
                    with contextlib.suppress(OSError, ValueError):
                        now = gauges(info["metrics_port"])
                        series.extend(v for k, v in now.items() if "concurrency_limit" in k)

            timer = threading.Thread(target=settle, daemon=True)
            poller = threading.Thread(target=poll, daemon=True)
            timer.start()
            poller.start()
            result = load(cfg, port, body, cfg.duration_s, rps)
            done.set()
            timer.join()
            poller.join()
            result["limit_each_second"] = series
            late = get_json(stats_url).get("latency", {})
            result["gateway_metrics"] = gauges(info["metrics_port"])
    result["sandbox_latency_ms"] = {
        "unloaded": unloaded,
        f"first_{SETTLE_S:.0f}s": early,
        "after": late,
    }
    return result


def run(
    cfg: Cfg, cases: list[str], modes: list[str], gateway_env: dict[str, str]
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="lg-slow-vendor-"))
    out: dict[str, Any] = {}
    slow = tmp / "slow.bin"
    slow.write_bytes(
        detect_request_bin(payload(f"SANDBOX:score=0.5;delay_ms={SLOW_MS}\n".encode()))
    )
    plain = tmp / "plain.bin"
    plain.write_bytes(detect_request_bin(payload(b"SANDBOX:score=0.5\n")))
    capacity = ["--latency-ms", str(CAPACITY_LATENCY_MS), "--capacity", str(CAPACITY)]
    plan = {"a": (slow, [], None), "b": (plain, capacity, OFFERED_RPS)}
    for case in cases:
        body, sandbox_args, rps = plan[case]
        for mode in modes:
            res = one_run(cfg, tmp, mode, body, sandbox_args, f"{case}-{mode}", gateway_env, rps)
            out[f"{case}_{mode}"] = res
            print(json.dumps({f"{case}_{mode}": res}), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def _f(value: Any, fmt: str = "{:.0f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "# Slow vendor",
        "",
        f"{res['date']}; commit {res['commit']} (service {res['service_commit']}); load average "
        f"{res['loadavg_1m_before_after'][0]:.2f} before, "
        f"{res['loadavg_1m_before_after'][1]:.2f} after; "
        + (
            f"gateway pinned to CPU {SERVER_CPU}, sandbox and ghz to CPU {LOAD_CPU}"
            if res["pinned"]
            else "not pinned"
        )
        + f"; {CALLERS} callers on {CONNECTIONS} connections, {PAYLOAD_BYTES // KIB} KiB, "
        f"{res['duration_s']:.0f} s each, gateway defaults but the mode"
        + (f" and {res['gateway_env']}" if res.get("gateway_env") else "")
        + f"; (a) closed loop, (b) {OFFERED_RPS} calls/s offered. Calls still in flight when "
        "ghz stops (it closes its connections) are not counted.",
        "",
        "| case | mode | calls | served | served share | served/s | served p50 / p99 ms "
        "| shed | shed p50 / p99 ms | other errors | vendor p50 / p99 ms unloaded "
        f"| first {SETTLE_S:.0f} s | after | limit at end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in res["results"].items():
        case, mode = key.split("_", 1)
        lat = r["sandbox_latency_ms"]
        early = lat[f"first_{SETTLE_S:.0f}s"]
        limit = [v for k, v in r["gateway_metrics"].items() if "concurrency_limit" in k]

        def pair(d: dict[str, Any]) -> str:
            return f"{_f(d.get('p50_ms'))} / {_f(d.get('p99_ms'))}"

        lines.append(
            f"| {case} | {mode} | {r['calls']} | {r['served']} "
            f"| {_f(r['served_share'], '{:.1%}')} | {_f(r['served_per_s'])} "
            f"| {_f(r['served_p50_ms'])} / {_f(r['served_p99_ms'])} | {r['shed']} "
            f"| {_f(r['shed_p50_ms'], '{:.1f}')} / {_f(r['shed_p99_ms'], '{:.1f}')} "
            f"| {r['other_errors']} | {pair(lat['unloaded'])} | {pair(early)} "
            f"| {pair(lat['after'])} | {_f(limit[0]) if limit else 'n/a'} |"
        )
    errors = {k: r["errors"] for k, r in res["results"].items() if r["errors"]}
    if errors:
        lines += ["", "Errors by kind:", "", "```", json.dumps(errors, indent=1), "```"]
    return "\n".join(lines) + "\n"


def _commit(path: Path) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(  # noqa: S603
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ghz", required=True)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load run")
    parser.add_argument("--cases", default="a,b", help="a (ample capacity), b (limited)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--gateway-env", action="append", default=[], help="VAR=value for the gateway (repeat)"
    )
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    cfg = Cfg(
        ghz=args.ghz,
        h2load="h2load",
        duration_s=args.duration,
        rate_duration_s=args.duration,
        sweep=False,
        sizes=[],
        uvloop=False,
        scaling=False,
        out=Path(args.out),
        server_prefix=("taskset", "-c", str(SERVER_CPU)) if pin else (),
        load_prefix=("taskset", "-c", str(LOAD_CPU)) if pin else (),
    )
    started = time.time()
    before = os.getloadavg()[0]
    gateway_env = dict(item.split("=", 1) for item in args.gateway_env)
    results = run(cfg, args.cases.split(","), args.modes.split(","), gateway_env)
    commit = _commit(ROOT)
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "commit": commit,
        # another checkout's service/ (BENCH_SERVICE_DIR): its commit, never its path
        "service_commit": _commit(Path(os.environ["BENCH_SERVICE_DIR"]))
        if os.environ.get("BENCH_SERVICE_DIR")
        else commit,
        "loadavg_1m_before_after": [before, os.getloadavg()[0]],
        "pinned": pin,
        "duration_s": args.duration,
        "gateway_env": gateway_env,
        "results": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "slow_vendor.json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    (out / "slow_vendor.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
