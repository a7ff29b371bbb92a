"""``liveness-gateway`` command line: ``serve``, ``sandbox`` and ``migrate``.

The flags, their environment variables and their defaults come from the one table in
:mod:`liveness_gateway.settings`. Vendor secrets have no flag at all: ``ps`` would show them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from liveness_gateway import __version__, audit, logs, readyfile, settings, workers
from liveness_gateway.config import ConfigError, GatewayConfig
from liveness_gateway.sandbox import Credentials, SandboxConfig, start_sandbox
from liveness_gateway.server import serve_until, start, stop_signal
from liveness_gateway.vendors import VENDORS

log = logging.getLogger("liveness_gateway")


def _parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="liveness-gateway", description=__doc__)
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = root.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(settings.SERVE, help="run the gRPC gateway")
    settings.add_arguments(serve, settings.SERVE)
    sandbox = sub.add_parser(settings.SANDBOX, help="run the offline vendor sandbox alone")
    settings.add_arguments(sandbox, settings.SANDBOX)
    migrate = sub.add_parser(
        settings.MIGRATE, help="apply the audit trail's schema versions to --audit-url, then exit"
    )
    settings.add_arguments(migrate, settings.MIGRATE)
    return root


def _gateway_config(
    values: Mapping[str, Any], env: Mapping[str, str], sandbox: workers.SandboxInfo | None
) -> GatewayConfig:
    credentials = None
    if sandbox is not None:
        url, config = sandbox
        credentials = (url, {name: config.credentials(name).pair for name in VENDORS})
    return settings.gateway_config(values, env, credentials)


def sandbox_config(values: Mapping[str, Any]) -> SandboxConfig:
    """The stand-alone sandbox's configuration from its settings."""
    credentials: dict[str, Any] = {
        name: Credentials(values[f"sandbox.{name}.id"], values[f"sandbox.{name}.secret"])
        for name in VENDORS
    }
    try:
        return _sandbox_config(values, credentials)
    except ValueError as exc:
        raise ConfigError(f"sandbox: {exc}") from None


def _sandbox_config(values: Mapping[str, Any], credentials: dict[str, Any]) -> SandboxConfig:
    return SandboxConfig(
        **credentials,
        detect_file_part=values["sandbox.detect_file_part"],
        extra_bools=values["sandbox.extra_bools"],
        image_encoding=values["sandbox.image_encoding"],
        download_allow=values["sandbox.download_allow"],
        latency_ms=values["sandbox.latency_ms"],
        capacity=values["sandbox.capacity"],
    )


async def _serve(values: Mapping[str, Any], env: Mapping[str, str]) -> None:
    stop = stop_signal()
    sandbox = None
    if values["cli.sandbox"]:
        sandbox = await start_sandbox(SandboxConfig.generate())
        log.warning("SANDBOX MODE: vendors are emulated at %s; scores are not real", sandbox.url)
    try:
        config = _gateway_config(
            values, env, (sandbox.url, sandbox.config) if sandbox is not None else None
        )
        gateway = await start(config)
        log.info("liveness-gateway %s listening on %s:%d", __version__, config.host, gateway.port)
        if gateway.metrics_port is not None:
            log.info("metrics on http://%s:%d/metrics", config.metrics_host, gateway.metrics_port)
        await serve_until(gateway, stop)
    finally:
        if sandbox is not None:
            await sandbox.stop()


async def _sandbox(values: Mapping[str, Any]) -> None:
    stop = stop_signal()
    sandbox = await start_sandbox(
        sandbox_config(values), host=values["sandbox.host"], port=values["sandbox.port"]
    )
    log.info("vendor sandbox listening on %s", sandbox.url)
    ready_file = values["sandbox.ready_file"]
    try:
        if ready_file:
            readyfile.write(ready_file, readyfile.sandbox_info(sandbox.port, sandbox.url))
        await stop.wait()
    finally:
        if ready_file:
            readyfile.remove(ready_file)
        await sandbox.stop()


async def _migrate(values: Mapping[str, Any], env: Mapping[str, str]) -> int:
    config = settings.audit_config(values, env)
    if config is None:
        raise ConfigError("migrate needs --audit-url (LIVENESS_AUDIT_URL)")
    store = audit.open_store(config)
    try:
        applied = await store.open()
    except audit.StoreUnavailableError as exc:
        print(f"liveness-gateway: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    done = ", ".join(f"{v:04d}" for v in applied) if applied else "none (up to date)"
    print(f"audit schema: {store.kind} up to date; applied now: {done}")
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = _parser().parse_args(argv)
    try:
        values = settings.resolve(args.command, args, env)
        logs.configure(values["cli.log_format"], str(values["cli.log_level"]))
        if args.command == settings.SANDBOX:
            asyncio.run(_sandbox(values))
            return 0
        if args.command == settings.MIGRATE:
            return asyncio.run(_migrate(values, env))
        count = values["cli.workers"]
        if count < 1:
            raise ConfigError("--workers (LIVENESS_WORKERS) must be at least 1")
        if count > 1:
            return workers.supervise(
                count,
                lambda sandbox: _gateway_config(values, env, sandbox),
                sandbox=values["cli.sandbox"],
            )
        asyncio.run(_serve(values, env))
    except ConfigError as exc:
        print(f"liveness-gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except (OSError, audit.StoreUnavailableError) as exc:
        print(f"liveness-gateway: {exc}", file=sys.stderr)
        return 1
    return 0
