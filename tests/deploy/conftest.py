"""Fixtures for the chart tests: helm (built by mk/deploy.mk) and a renderer.

These tests run in the root ``make pytest`` as well as in ``make test-helm``'s company; make
builds helm first and passes its path in ``LIVENESS_HELM``. Without helm they fail loudly:
they are never skipped. Those that use helm are system tests (tests/conftest.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import tools

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "liveness-gateway"
CI_VALUES = CHART / "ci"
RELEASE = "release"
NAMESPACE = "liveness"

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def helm() -> Path:
    return Path(tools.find("helm"))


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own binary, fixed arguments)
        [str(helm), *args], capture_output=True, text=True, timeout=60, check=False
    )


def template_args(values: Sequence[str | Path] = (), sets: Sequence[str] = ()) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """Render the chart with values files and --set items; fail with helm's error if it fails."""

    def _render(*values: str | Path, sets: Sequence[str] = ()) -> list[Manifest]:
        result = run_helm(helm, *template_args(values, sets))
        if result.returncode != 0:
            pytest.fail(f"helm template failed: {result.stderr}")
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


def ci_values(name: str) -> Path:
    path = CI_VALUES / f"{name}-values.yaml"
    assert path.is_file(), path
    return path


def only(docs: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def kinds(docs: list[Manifest]) -> set[str]:
    return {d["kind"] for d in docs}


def gateway_container(docs: list[Manifest]) -> dict[str, Any]:
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "gateway"]
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}
