"""``--workers N``: N gateway processes sharing one port, one /metrics for all of them.

The parent forks the workers before any gRPC server exists; each worker runs a complete
gateway bound with SO_REUSEPORT, so the kernel spreads connections across them. Metric values
go to prometheus_client's multiprocess files in a private directory, and the parent serves
/metrics from them (``MultiProcessCollector``: counters and histograms are summed; the
in-flight gauge is ``livesum``, build_info ``max``). In sandbox mode the parent also hosts the
sandbox. Each worker reports on a pipe once it serves; when all have, the parent writes the
ready file (``--ready-file``) with the shared ports and the worker pids. A worker that dies
outside shutdown takes the whole group down with exit code 1: the orchestrator restarts it,
rather than a supervisor hiding a crash loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable

from aiohttp import web
from prometheus_client import multiprocess

from liveness_gateway import __version__, metrics, readyfile
from liveness_gateway.config import GatewayConfig
from liveness_gateway.sandbox import SandboxConfig, create_app
from liveness_gateway.server import serve_until, start, start_metrics_server, stop_signal

log = logging.getLogger(__name__)

_REAP_INTERVAL_S = 0.1

SandboxInfo = tuple[str, SandboxConfig]


def supervise(
    workers: int,
    make_config: Callable[[SandboxInfo | None], GatewayConfig],
    *,
    sandbox: bool,
) -> int:
    """Fork ``workers`` gateways and serve until SIGTERM/SIGINT; returns the exit code."""
    sandbox_sock: socket.socket | None = None
    sandbox_config: SandboxConfig | None = None
    sandbox_info: SandboxInfo | None = None
    if sandbox:
        sandbox_sock = socket.create_server(("127.0.0.1", 0))
        sandbox_config = SandboxConfig.generate()
        sandbox_info = (f"http://127.0.0.1:{sandbox_sock.getsockname()[1]}", sandbox_config)
        log.warning(
            "SANDBOX MODE: vendors are emulated at %s; scores are not real", sandbox_info[0]
        )
    config = make_config(sandbox_info)
    reservations: list[socket.socket] = []
    # Every worker must bind the same ports: choose them here.
    if config.port == 0:
        reservations.append(_reserve_port(config.host))
        config = dataclasses.replace(config, port=reservations[-1].getsockname()[1])
    if config.health_port == 0:
        reservations.append(_reserve_port(config.host))
        config = dataclasses.replace(config, health_port=reservations[-1].getsockname()[1])
    ready_file, config = config.ready_file, dataclasses.replace(config, ready_file=None)
    directory = tempfile.mkdtemp(prefix="liveness-gateway-metrics-")
    children: dict[int, int] = {}
    ready_r, ready_w = os.pipe()
    try:
        for index in range(workers):
            children[_fork_worker(index, config, directory, sandbox_sock, ready_w)] = index
        os.close(ready_w)
        return asyncio.run(
            _parent(children, config, directory, sandbox_sock, sandbox_config, ready_r, ready_file)
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        os.close(ready_r)
        for reservation in reservations:
            reservation.close()


def _reserve_port(host: str) -> socket.socket:
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((bare, 0))
    return sock


def _fork_worker(
    index: int,
    config: GatewayConfig,
    directory: str,
    sandbox_sock: socket.socket | None,
    ready_w: int,
) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        if sandbox_sock is not None:
            sandbox_sock.close()
        metrics.enable_multiprocess(directory)
        asyncio.run(_worker(index, config, ready_w))
        code = 0
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        os._exit(code)


async def _worker(index: int, config: GatewayConfig, ready_w: int) -> None:
    stop = stop_signal()
    gateway = await start(config, serve_metrics=False, reuse_port=True)
    log.info(
        "liveness-gateway %s worker %d listening on %s:%d",
        __version__,
        index,
        config.host,
        gateway.port,
    )
    os.write(ready_w, b"%d\n" % os.getpid())  # one short write: atomic on a pipe
    os.close(ready_w)
    await serve_until(gateway, stop)


async def _parent(
    children: dict[int, int],
    config: GatewayConfig,
    directory: str,
    sandbox_sock: socket.socket | None,
    sandbox_config: SandboxConfig | None,
    ready_r: int,
    ready_file: str | None,
) -> int:
    runners: list[web.AppRunner] = []
    metrics_port = None
    if config.metrics_port is not None:
        registry = metrics.multiprocess_registry(directory)
        registry.register(metrics.WorkerProcessCollector(children))
        runner, metrics_port = await start_metrics_server(
            registry, config.metrics_host, config.metrics_port
        )
        runners.append(runner)
        log.info("metrics on http://%s:%d/metrics", config.metrics_host, metrics_port)
    if sandbox_sock is not None and sandbox_config is not None:
        runner = web.AppRunner(create_app(sandbox_config), access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sandbox_sock).start()
        runners.append(runner)

    stopping = False
    failed = False
    serving: list[int] = []
    expected = len(children)
    loop = asyncio.get_running_loop()

    def worker_ready() -> None:
        nonlocal failed
        data = os.read(ready_r, 4096)
        if not data:  # every worker has exited or reported
            loop.remove_reader(ready_r)
            return
        serving.extend(int(pid) for pid in data.split())
        if len(serving) < expected or stopping:
            return
        log.info("all %d workers serving", expected)
        if ready_file:
            info = readyfile.gateway_info(
                config, config.port, metrics_port, config.health_port, serving
            )
            try:
                readyfile.write(ready_file, info)
            except OSError as exc:
                log.error("cannot write the ready file %s: %s; stopping", ready_file, exc)
                failed = True
                forward(signal.SIGTERM)

    def forward(sig: signal.Signals) -> None:
        nonlocal stopping
        if ready_file:
            readyfile.remove(ready_file)
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    loop.add_reader(ready_r, worker_ready)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, forward, sig)
    exit_code = 0
    try:
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)  # noqa: ASYNC222  (WNOHANG never blocks)
            if pid == 0:
                await asyncio.sleep(_REAP_INTERVAL_S)
                continue
            index = children.pop(pid, None)
            if index is None:
                continue
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
            code = os.waitstatus_to_exitcode(status)
            if code != 0 or not stopping:
                log.error(
                    "worker %d (pid %d) exited with %d; stopping all workers", index, pid, code
                )
                exit_code = 1
                forward(signal.SIGTERM)
    finally:
        loop.remove_reader(ready_r)
        if ready_file:
            readyfile.remove(ready_file)
        for runner in runners:
            await runner.cleanup()
    return 1 if failed else exit_code
