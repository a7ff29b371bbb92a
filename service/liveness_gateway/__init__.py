"""liveness-gateway: a gRPC front for face-liveness vendor HTTP APIs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("liveness-gateway")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

DOMAIN = "liveness.v1"
"""ErrorInfo domain of every status the gateway returns."""
