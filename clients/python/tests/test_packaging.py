"""The declared dependency ranges and the lowest versions make tests the client with."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1]


def _floors() -> dict[str, str]:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([a-z0-9-]+)>=([0-9.]+),<([0-9]+)", requirement)
        assert match, f"{requirement!r}: want name>=lowest,<next-major"
        name, lowest, below = match.groups()
        assert int(below) == int(lowest.split(".")[0]) + 1, f"{requirement!r}: < the next major"
        floors[name] = lowest
    return floors


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (CLIENT / "constraints-lowest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    return pins


def test_the_lowest_constraints_are_the_declared_floors() -> None:
    assert _constraints() == _floors()
    assert set(_floors()) == {
        "googleapis-common-protos",
        "grpcio",
        "grpcio-health-checking",
        "grpcio-status",
        "protobuf",
    }


def test_the_generated_code_needs_no_newer_runtime_than_the_floors() -> None:
    floors = {name: tuple(map(int, v.split("."))) for name, v in _floors().items()}
    generated = CLIENT / "src" / "liveness_client" / "_proto" / "liveness" / "v1"
    grpc_version = re.search(
        r"GRPC_GENERATED_VERSION = '([0-9.]+)'", (generated / "liveness_pb2_grpc.py").read_text()
    )
    assert grpc_version
    assert tuple(map(int, grpc_version[1].split("."))) <= floors["grpcio"]
    for module in generated.glob("*_pb2.py"):
        found = re.search(r"PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", module.read_text())
        assert found, module
        assert tuple(map(int, found.groups())) <= floors["protobuf"], module
