"""The offline vendor sandbox: run it in-process or as ``liveness-gateway sandbox``."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from liveness_gateway.sandbox.app import (
    STATE,
    Credentials,
    SandboxConfig,
    SandboxState,
    create_app,
)


@dataclass
class RunningSandbox:
    """A started sandbox: its base URL, its state, and how to stop it."""

    runner: web.AppRunner
    url: str
    port: int
    config: SandboxConfig

    @property
    def state(self) -> SandboxState:
        return self.runner.app[STATE]

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_sandbox(
    config: SandboxConfig, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Start the sandbox on ``host:port`` (0 picks a free port) and return where it listens."""
    # handler_cancellation: like a real server, the sandbox stops working on a request whose
    # client went away (so tests can see that a cancelled call left nothing in flight).
    runner = web.AppRunner(
        create_app(config), access_log=None, handle_signals=False, handler_cancellation=True
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1]  # the real port when port == 0
    url_host = f"[{host}]" if ":" in host else host
    return RunningSandbox(runner, f"http://{url_host}:{bound}", bound, config)


__all__ = [
    "Credentials",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxState",
    "create_app",
    "start_sandbox",
]
