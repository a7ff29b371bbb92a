"""Start ``liveness-gateway`` with the event loop the benchmark asks for.

``BENCH_UVLOOP=1`` installs uvloop's event loop policy before the command line runs; forked
``--workers`` inherit it. Everything else is the real entry point, unchanged.
"""

from __future__ import annotations

import asyncio
import os
import sys

if os.environ.get("BENCH_UVLOOP") == "1":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

from liveness_gateway.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
