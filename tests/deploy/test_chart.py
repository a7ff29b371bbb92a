"""The Helm chart, rendered with helm for real: what a platform team checks before accepting it."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
import yaml
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.config import GatewayConfig

from tests.deploy.conftest import (
    CHART,
    ROOT,
    Render,
    ci_values,
    env_of,
    gateway_container,
    kinds,
    only,
    run_helm,
    template_args,
)
from tests.processes import Processes

ALL_VALUES = ["", "all-features", "existing-secret", "fleet", "sandbox", "tls-auth", "audit-sqlite"]
CI_SECRETS = ("ci-linkface-secret-value", "ci-accuauth-secret-value")


def _values(name: str) -> tuple[Path, ...]:
    return (ci_values(name),) if name else ()


def _chart() -> dict[str, str]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())  # type: ignore[no-any-return]


def _defaults() -> dict[str, object]:
    return yaml.safe_load((CHART / "values.yaml").read_text())  # type: ignore[no-any-return]


def test_default_install_renders_the_core_objects_only(render: Render) -> None:
    docs = render()
    assert kinds(docs) == {
        "Deployment",
        "Service",
        "ServiceAccount",
        "Secret",
        "PodDisruptionBudget",
    }


def test_every_optional_object_renders_when_switched_on(render: Render) -> None:
    docs = render(ci_values("all-features"))
    assert kinds(docs) >= {
        "ServiceMonitor",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceAccount",
        "ConfigMap",
    }
    assert only(docs, "HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"
    assert only(docs, "PodDisruptionBudget")["apiVersion"] == "policy/v1"
    # The HPA owns the replica count.
    assert "replicas" not in only(docs, "Deployment")["spec"]


def _ports(container: dict[str, object]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize("values", ALL_VALUES)
def test_probes_are_native_grpc_on_the_health_port(render: Render, values: str) -> None:
    docs = render(*_values(values))
    container = gateway_container(docs)
    ports = _ports(container)
    env = env_of(container)
    assert env["LIVENESS_PORT"]["value"] == str(ports["grpc"])
    if "LIVENESS_TLS_CERT" in env:
        # kubelet's gRPC probes speak plaintext only: with TLS they go to the health-only port.
        assert env["LIVENESS_HEALTH_PORT"]["value"] == str(ports["health"])
        probe_port = ports["health"]
        assert probe_port != ports["grpc"]
    else:
        assert "health" not in ports
        assert "LIVENESS_HEALTH_PORT" not in env
        probe_port = ports["grpc"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        spec = container[probe]
        assert set(spec) & {"httpGet", "tcpSocket", "exec"} == set(), probe
        assert spec["grpc"]["port"] == probe_port, probe
        # A number: Kubernetes' gRPC probes take no named port.
        assert isinstance(spec["grpc"]["port"], int), probe
        # The overall health ("" service), which the gateway flips to NOT_SERVING on drain.
        assert spec["grpc"].get("service", "") == "", probe


@pytest.mark.parametrize("values", ALL_VALUES)
def test_security_context_is_hardened(render: Render, values: str) -> None:
    docs = render(*_values(values))
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    if "ServiceAccount" in kinds(docs):
        assert only(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    sc = gateway_container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # A read-only root still gets a small writable /tmp.
    mounts = {m["mountPath"] for m in gateway_container(docs)["volumeMounts"]}
    assert "/tmp" in mounts  # noqa: S108 (the pod's own emptyDir)


def test_resources_rollout_and_spread(render: Render) -> None:
    deployment = only(render(), "Deployment")
    spec = deployment["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = gateway_container([deployment])
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    spread = spec["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]


@pytest.mark.parametrize("values", ALL_VALUES)
def test_pre_stop_and_grace_period_outlast_the_drain(render: Render, values: str) -> None:
    docs = render(*_values(values))
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    container = gateway_container(docs)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop_s = float(command[1])
    drain_s = float(env_of(container)["LIVENESS_GRACE_S"]["value"])
    assert pre_stop_s > 0
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + drain_s


def test_chart_drain_default_is_the_gateways(render: Render) -> None:
    (grace,) = [f for f in dataclasses.fields(GatewayConfig) if f.name == "grace_s"]
    container = gateway_container(render())
    assert float(env_of(container)["LIVENESS_GRACE_S"]["value"]) == grace.default


def test_chart_connection_and_concurrency_defaults_are_the_gateways(render: Render) -> None:
    """The chart's connection age, keepalive policy, vendor concurrency and stream limit
    are the gateway's own defaults (the settings table), so both document the same."""
    from liveness_gateway.settings import SETTINGS

    defaults = {s.env: s.default for s in SETTINGS}
    env = env_of(gateway_container(render()))
    for name in (
        "LIVENESS_MAX_CONNECTION_AGE_S",
        "LIVENESS_MAX_CONNECTION_AGE_GRACE_S",
        "LIVENESS_KEEPALIVE_MIN_PING_INTERVAL_S",
        "LIVENESS_VENDOR_CONCURRENCY_MIN",
        "LIVENESS_VENDOR_CONCURRENCY_MAX",
        "LIVENESS_VENDOR_LATENCY_TOLERANCE",
        "LIVENESS_MAX_STREAMS_PER_CONNECTION",
        "LIVENESS_MAX_CONNECTIONS",
    ):
        assert float(env[name]["value"]) == defaults[name], name
    assert env["LIVENESS_VENDOR_CONCURRENCY"]["value"] == defaults["LIVENESS_VENDOR_CONCURRENCY"]
    assert env["LIVENESS_KEEPALIVE_PERMIT_WITHOUT_CALLS"]["value"] == "0"
    on = env_of(
        gateway_container(render(sets=["gateway.connections.keepalivePermitWithoutCalls=true"]))
    )
    assert on["LIVENESS_KEEPALIVE_PERMIT_WITHOUT_CALLS"]["value"] == "1"


def test_chart_refuses_a_grace_period_shorter_than_the_drain(helm: Path) -> None:
    args = template_args(sets=["terminationGracePeriodSeconds=12", "gateway.drainSeconds=10"])
    result = run_helm(helm, *args)
    assert result.returncode != 0
    assert "terminationGracePeriodSeconds (12) must exceed" in result.stderr


def _secret_appears_only_in_secrets(
    docs: list[dict[str, object]], secrets: tuple[str, ...]
) -> None:
    for doc in docs:
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        for secret in secrets:
            assert secret not in text, f"secret in {doc['kind']}"
            assert base64.b64encode(secret.encode()).decode() not in text, doc["kind"]


@pytest.mark.parametrize("mount_as", ["file", "env"])
def test_credentials_only_ever_come_from_a_secret(render: Render, mount_as: str) -> None:
    docs = render(
        sets=[
            f"credentials.linkfaceApiSecret={CI_SECRETS[0]}",
            f"credentials.accuauthApiSecret={CI_SECRETS[1]}",
            f"credentials.mountAs={mount_as}",
            "dashboard.enabled=true",
        ]
    )
    _secret_appears_only_in_secrets(docs, CI_SECRETS)
    secret = only(docs, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        "linkface-api-secret": CI_SECRETS[0],
        "accuauth-api-secret": CI_SECRETS[1],
    }
    env = env_of(gateway_container(docs))
    for vendor in ("LINKFACE", "ACCUAUTH"):
        if mount_as == "env":
            ref = env[f"{vendor}_API_SECRET"]
            assert "value" not in ref
            assert ref["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
            assert f"{vendor}_API_SECRET_FILE" not in env
        else:
            assert f"{vendor}_API_SECRET" not in env
            path = env[f"{vendor}_API_SECRET_FILE"]["value"]
            assert path.startswith("/var/run/secrets/liveness-gateway/")
    # A new secret value rolls the pods.
    pod_annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/credentials" in pod_annotations


def test_all_features_values_keep_their_secrets_in_the_secret(render: Render) -> None:
    docs = render(ci_values("all-features"))
    _secret_appears_only_in_secrets(docs, CI_SECRETS)
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert not any(s in json.dumps(doc["data"]) for s in CI_SECRETS)


def test_existing_secret_is_used_and_none_is_created(render: Render) -> None:
    docs = render(ci_values("existing-secret"))
    assert "Secret" not in kinds(docs)
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "credentials"]
    assert volume["secret"]["secretName"] == "liveness-vendor-credentials"
    assert {i["key"] for i in volume["secret"]["items"]} == {"linkface", "accuauth"}
    env = env_of(gateway_container(docs))
    assert env["LINKFACE_API_SECRET_FILE"]["value"].endswith("/linkface")
    assert env["ACCUAUTH_API_SECRET_FILE"]["value"].endswith("/accuauth")


def test_sandbox_is_off_by_default_and_needs_no_credentials_when_on(render: Render) -> None:
    assert "LIVENESS_SANDBOX" not in env_of(gateway_container(render()))
    assert _defaults()["gateway"]["sandbox"] is False  # type: ignore[index]
    docs = render(ci_values("sandbox"))
    env = env_of(gateway_container(docs))
    assert env["LIVENESS_SANDBOX"]["value"] == "1"
    assert "Secret" not in kinds(docs)
    assert not [name for name in env if "SECRET" in name]


def _serve_settings() -> set[str]:
    """The environment variables that ``liveness-gateway serve --help`` documents."""
    result = subprocess.run(
        [sys.executable, "-m", "liveness_gateway", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(re.findall(r"env\s+([A-Z][A-Z0-9_]+)", result.stdout))


# Settings the chart deliberately leaves at the gateway's default.
NOT_FROM_VALUES = {
    "LIVENESS_HOST": "a pod listens on all its interfaces",
    "LIVENESS_METRICS_HOST": "a pod listens on all its interfaces",
    "LIVENESS_READY_FILE": "for whoever starts the gateway on port 0; pods are probed by gRPC",
}


def test_every_gateway_setting_is_reachable_from_values(render: Render) -> None:
    docs = render(ci_values("all-features"), ci_values("tls-auth"), sets=["gateway.sandbox=true"])
    env = set(env_of(gateway_container(docs)))
    missing = _serve_settings() - env - set(NOT_FROM_VALUES)
    assert not missing, (
        f"`liveness-gateway serve` has settings the chart does not set: {sorted(missing)}; "
        "add them to values.yaml (documented) and templates/deployment.yaml"
    )


def test_every_value_is_documented_in_place() -> None:
    documented = set(re.findall(r"## @param (\S+)", (CHART / "values.yaml").read_text()))

    def leaves(node: object, prefix: str = "") -> set[str]:
        if isinstance(node, dict) and node and prefix.rstrip(".") not in documented:
            return set().union(*(leaves(v, f"{prefix}{k}.") for k, v in node.items()))
        return {prefix.rstrip(".")}

    assert leaves(_defaults()) <= documented


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (["replicaCount=two"], "replicaCount"),
        (["gateway.detectThreshold=1.5"], "detectThreshold"),
        (["gateway.logFormat=xml"], "logFormat"),
        (["gateway.grpcPort=70000"], "grpcPort"),
        (["gateway.sandbox=maybe"], "sandbox"),
        (["gateway.workers=0"], "workers"),
        (["gateway.limits.maxInFlight=-1"], "maxInFlight"),
        (["gateway.limits.vendorRate=fast"], "vendorRate"),
        (["gateway.limits.vendorConcurrency=elastic"], "vendorConcurrency"),
        (["gateway.connections.maxAgeSeconds=-1"], "maxAgeSeconds"),
        (["gateway.urlAllowHosts={a b}"], "urlAllowHosts"),
        (["credentials.mountAs=configmap"], "mountAs"),
        (["tls.enabled=yes"], "enabled"),
        (["tls.clientAuth=1"], "clientAuth"),
        (["tls.existingSecret=Not_A_Name"], "existingSecret"),
        (["tls.certFile=/etc/tls.crt"], "certFile"),
        (["auth.enabled=on"], "enabled"),
        (["auth.existingSecretKey=a/b"], "existingSecretKey"),
        (["auth.tokens={abc}"], "tokens"),
        (["gateway.healthPort=0"], "healthPort"),
        (["gateway.healthPortWithoutTls=sometimes"], "healthPortWithoutTls"),
        (["vendors.linkface.baseUrl=ftp://example.test"], "baseUrl"),
        (["replicas=3"], "replicas"),
        (["gateway.drainSecond=3"], "drainSecond"),
        (["tracing.sampler=sometimes"], "sampler"),
        (["tracing.samplerArg=2"], "samplerArg"),
        (["tracing.otlpEndpoint=collector:4317"], "otlpEndpoint"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, sets: list[str], complaint: str) -> None:
    result = run_helm(helm, *template_args(sets=sets))
    assert result.returncode != 0, sets
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_image_tag_defaults_to_the_app_version(render: Render) -> None:
    chart = _chart()
    image = gateway_container(render())["image"]
    assert image == f"liveness-gateway:{chart['appVersion']}"
    digest = "sha256:" + "a" * 64
    pinned = gateway_container(render(sets=["image.tag=1.2.3", f"image.digest={digest}"]))
    assert pinned["image"] == f"liveness-gateway:1.2.3@{digest}"


def test_chart_app_version_is_the_gateways() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    (version,) = re.findall(r'^version = "([^"]+)"', pyproject, flags=re.MULTILINE)
    assert _chart()["appVersion"] == version


def test_service_ports_and_service_monitor(render: Render) -> None:
    docs = render(ci_values("all-features"))
    service = only(docs, "Service", name_suffix="liveness-gateway")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"]
    assert ports["metrics"]["appProtocol"] == "http"
    assert ports["grpc"]["targetPort"] == "grpc"
    monitor = only(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    headless = only(docs, "Service", name_suffix="-headless")
    assert headless["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("values", ["all-features", "tls-auth"])
def test_network_policy_opens_only_the_gateway_ports(render: Render, values: str) -> None:
    docs = render(ci_values(values))
    policy = only(docs, "NetworkPolicy")
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    container_ports = _ports(gateway_container(docs))
    # The health-only port stays closed to other pods: kubelet's probes come from the node,
    # which a NetworkPolicy never blocks.
    assert ports == {container_ports["grpc"], container_ports["metrics"]}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def _dashboard(render: Render) -> tuple[dict[str, object], dict[str, object]]:
    docs = render(ci_values("all-features"))
    configmap = only(docs, "ConfigMap", name_suffix="-dashboard")
    return configmap, json.loads(configmap["data"]["liveness-gateway.json"])


def test_dashboard_ships_for_the_grafana_sidecar(render: Render) -> None:
    configmap, dashboard = _dashboard(render)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"  # type: ignore[index]
    assert dashboard["uid"] == "liveness-gateway"
    assert dashboard["panels"]


def test_dashboard_only_queries_metrics_the_gateway_exports(render: Render) -> None:
    from liveness_gateway.metrics import Metrics
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    Metrics(registry)
    exported = set()
    for family in registry.collect():
        exported.add(family.name)
        exported.update(s.name for s in family.samples)
        exported.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count"))
    _, dashboard = _dashboard(render)
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]  # type: ignore[attr-defined]
        for target in panel.get("targets", [])
    ]
    used = {m for e in exprs for m in re.findall(r"\b([a-z_]+)\{", e)}
    assert used
    unknown = {m for m in used - exported if not m.startswith("process_")}
    assert not unknown, f"the dashboard queries metrics the gateway does not export: {unknown}"


# Labels a Prometheus scrape adds to every series (target labels), not the gateway.
_TARGET_LABELS = {"namespace", "job", "pod", "instance"}


def _dashboard_queries(render: Render) -> list[tuple[set[str], set[str]]]:
    """Per query of the dashboard: the metric names it reads and the label names it uses
    (in selectors and in ``by (...)``), target labels left out."""
    _, dashboard = _dashboard(render)
    queries = []
    for panel in dashboard["panels"]:  # type: ignore[attr-defined]
        for target in panel.get("targets", []):
            expr = target["expr"]
            names = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\{", expr))
            labels = set(re.findall(r"([a-z_][a-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"", expr))
            for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                labels.update(label.strip() for label in group.split(",") if label.strip())
            queries.append((names, labels - _TARGET_LABELS))
    return queries


def _running_gateway_metrics(processes: Processes, workers: int) -> str:
    """/metrics of a real ``liveness-gateway serve --sandbox --workers N`` after a Detect."""
    gateway = processes.gateway("--workers", str(workers), "--grace", "1")
    with grpc.insecure_channel(gateway.address) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.5"), timeout=10)
    url = f"http://127.0.0.1:{gateway.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


@pytest.mark.parametrize("workers", [1, 2])
def test_every_dashboard_metric_and_label_exists_on_a_running_gateway(
    render: Render, processes: Processes, workers: int
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = _running_gateway_metrics(processes, workers)
    labels_of: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels_of.setdefault(s.name, set()).update(s.labels)
    queries = _dashboard_queries(render)
    assert any("process_cpu_seconds_total" in names for names, _ in queries)
    problems = []
    for names, labels in queries:
        for name in names:
            if name not in labels_of:
                problems.append(f"{name} is not exported")
            elif missing := labels - labels_of[name]:
                problems.append(f"{name} has no label {sorted(missing)}")
    assert not problems, f"with {workers} worker(s): {problems}"
    if workers > 1:  # one series per process, told apart
        cpu = [
            s.labels
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "process_cpu_seconds_total"
        ]
        assert sorted(c["worker"] for c in cpu) == sorted(["supervisor", *map(str, range(workers))])


def test_dashboard_latency_panels_show_exemplars(render: Render) -> None:
    _, dashboard = _dashboard(render)
    latency = [
        target
        for panel in dashboard["panels"]  # type: ignore[attr-defined]
        if panel.get("type") == "timeseries"
        for target in panel.get("targets", [])
        if re.search(
            r"grpc_server_handling_seconds_bucket|vendor_request_duration_seconds_bucket",
            target["expr"],
        )
    ]
    assert latency
    assert all(target.get("exemplar") is True for target in latency)


def test_tracing_values_set_every_otel_setting(render: Render) -> None:
    from liveness_gateway import settings

    otel = {s.env for s in settings.SETTINGS if s.env.startswith("OTEL_")}
    assert otel
    assert not otel & set(env_of(gateway_container(render()))), "off by default"
    env = env_of(gateway_container(render(ci_values("all-features"))))
    assert otel <= set(env)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.monitoring:4317"
    assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
    assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.01"
    attributes = env["OTEL_RESOURCE_ATTRIBUTES"]["value"].split(",")
    assert "deployment.environment=ci" in attributes
    assert "k8s.pod.name=$(OTEL_K8S_POD_NAME)" in attributes
    names = list(env)
    assert names.index("OTEL_K8S_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")


def test_chart_tracing_defaults_are_the_gateways() -> None:
    from liveness_gateway import settings

    defaults = {s.env: s.default for s in settings.SETTINGS}
    tracing = _defaults()["tracing"]
    assert tracing["serviceName"] == defaults["OTEL_SERVICE_NAME"]  # type: ignore[index]
    assert tracing["sampler"] == defaults["OTEL_TRACES_SAMPLER"]  # type: ignore[index]


def test_rendered_manifests_fail_validation_on_an_unknown_field(
    render: Render, tmp_path: Path
) -> None:
    """The offline schema check of make test-helm is not vacuous."""
    docs = render()
    gateway_container(docs)["readinesProbe"] = {"grpc": {"port": 50051}}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(  # noqa: S603 (our own script)
        [
            sys.executable,
            str(ROOT / "scripts" / "validate-manifests.py"),
            "--kube-version",
            "1.27.0",
            str(broken),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "readinesProbe" in result.stderr


def test_image_requirements_pin_the_gateways_dependencies() -> None:
    pinned = dict(
        line.split("==")
        for line in (ROOT / "requirements-image.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    normalise = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    pinned = {normalise(k): v for k, v in pinned.items()}
    pyproject = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)\]", pyproject, flags=re.S | re.M)
    assert deps
    for requirement in re.findall(r'"([^"]+)"', deps.group(1)):
        name, version = requirement.split("==")
        assert pinned.get(normalise(name)) == version, requirement


# TLS, mTLS and caller authentication: files from Secret volumes, probes on the health port.

TLS_DIR = "/var/run/secrets/liveness-gateway-tls"
CALLERS_DIR = "/var/run/secrets/liveness-gateway-callers"
# A token hash from ci/tls-auth-values.yaml: not a secret, but kept out of ConfigMaps and env.
CI_TOKEN_HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _pod(docs: list[dict[str, object]]) -> dict[str, object]:
    return only(docs, "Deployment")["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _mounted_file(docs: list[dict[str, object]], path: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    """The read-only mount and the volume that a file path of the container lies in."""
    container = gateway_container(docs)
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in _pod(docs)["volumes"] if v["name"] == mount["name"]]  # type: ignore[attr-defined]
    return mount, volume


def test_tls_and_callers_files_are_mounted_read_only_from_secrets(render: Render) -> None:
    docs = render(ci_values("tls-auth"))
    env = env_of(gateway_container(docs))
    expected = {
        "LIVENESS_TLS_CERT": ("liveness-gateway-tls", "tls.crt"),
        "LIVENESS_TLS_KEY": ("liveness-gateway-tls", "tls.key"),
        "LIVENESS_TLS_CLIENT_CA": ("liveness-client-ca", "ca.crt"),
        "LIVENESS_CALLERS_FILE": ("release-liveness-gateway-callers", "callers.toml"),
    }
    for name, (secret_name, key) in expected.items():
        path = env[name]["value"]
        assert "valueFrom" not in env[name]
        mount, volume = _mounted_file(docs, path)
        assert mount["readOnly"] is True, name
        # Whole volumes: a subPath mount would never see a renewed certificate.
        assert "subPath" not in mount, name
        if "projected" in volume:
            sources = volume["projected"]["sources"]
            mode = volume["projected"]["defaultMode"]
            assert all(set(s) == {"secret"} for s in sources), name
            secrets = [s["secret"] for s in sources]
        else:
            assert set(volume) == {"name", "secret"}, name
            secrets = [{**volume["secret"], "name": volume["secret"]["secretName"]}]
            mode = volume["secret"]["defaultMode"]
        assert mode & 0o007 == 0, f"{name}: readable by others ({oct(mode)})"
        file_name = path.rsplit("/", 1)[1]
        (item,) = [
            (s["name"], i["key"]) for s in secrets for i in s["items"] if i["path"] == file_name
        ]
        assert item == (secret_name, key), name
    assert env["LIVENESS_TLS_CERT"]["value"].startswith(TLS_DIR + "/")
    assert env["LIVENESS_CALLERS_FILE"]["value"].startswith(CALLERS_DIR + "/")


def test_client_ca_defaults_to_the_ca_of_the_tls_secret(render: Render) -> None:
    docs = render(sets=["tls.enabled=true", "tls.existingSecret=gw-tls", "tls.clientAuth=true"])
    env = env_of(gateway_container(docs))
    _, volume = _mounted_file(docs, env["LIVENESS_TLS_CLIENT_CA"]["value"])
    items = {
        (s["secret"]["name"], i["key"], i["path"])
        for s in volume["projected"]["sources"]
        for i in s["secret"]["items"]
    }
    assert items == {
        ("gw-tls", "tls.crt", "tls.crt"),
        ("gw-tls", "tls.key", "tls.key"),
        ("gw-tls", "ca.crt", "client-ca.crt"),
    }
    # TLS without client certificates: no client CA, so the gateway does not ask for them.
    docs = render(sets=["tls.enabled=true", "tls.existingSecret=gw-tls"])
    env = env_of(gateway_container(docs))
    assert {"LIVENESS_TLS_CERT", "LIVENESS_TLS_KEY"} <= set(env)
    assert "LIVENESS_TLS_CLIENT_CA" not in env


def test_tls_and_auth_are_off_by_default(render: Render) -> None:
    docs = render()
    env = env_of(gateway_container(docs))
    assert not {n for n in env if n.startswith("LIVENESS_TLS_")}
    assert "LIVENESS_CALLERS_FILE" not in env
    assert "LIVENESS_HEALTH_PORT" not in env
    assert {v["name"] for v in _pod(docs)["volumes"]} == {"tmp", "credentials"}  # type: ignore[attr-defined]
    defaults = _defaults()
    assert defaults["tls"]["enabled"] is False  # type: ignore[index]
    assert defaults["auth"]["enabled"] is False  # type: ignore[index]


def test_no_secret_material_in_a_configmap_or_an_env_literal(render: Render) -> None:
    docs = render(ci_values("all-features"), ci_values("tls-auth"))
    callers = yaml.safe_load((ci_values("tls-auth")).read_text())["auth"]["callers"]
    # The callers file lives only in the Secret the chart creates for it.
    secret = only(docs, "Secret", name_suffix="-callers")
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["callers.toml"]).decode() == callers
    _secret_appears_only_in_secrets(docs, (*CI_SECRETS, CI_TOKEN_HASH, "kyc.internal"))
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            data = json.dumps(doc["data"])
            assert "[[caller]]" not in data
            assert "token_sha256" not in data
    # TLS, mTLS and callers settings are file paths into Secret volumes, never contents.
    env = env_of(gateway_container(docs))
    for name in ("LIVENESS_TLS_CERT", "LIVENESS_TLS_KEY", "LIVENESS_TLS_CLIENT_CA"):
        assert re.fullmatch(rf"{TLS_DIR}/[a-z.-]+", env[name]["value"]), name
    assert re.fullmatch(rf"{CALLERS_DIR}/[a-z.-]+", env["LIVENESS_CALLERS_FILE"]["value"])
    for entry in env.values():
        assert "BEGIN" not in entry.get("value", ""), entry["name"]
        assert "[[caller]]" not in entry.get("value", ""), entry["name"]


def test_a_new_callers_file_rolls_the_pods_and_an_existing_secret_is_used(render: Render) -> None:
    docs = render(ci_values("tls-auth"))
    annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/callers" in annotations
    changed = render(ci_values("tls-auth"), sets=["auth.callers=x"])
    changed_annotations = only(changed, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert changed_annotations["checksum/callers"] != annotations["checksum/callers"]
    docs = render(
        sets=[
            "credentials.existingSecret=vendor",
            "auth.enabled=true",
            "auth.existingSecret=gw-callers",
            "auth.existingSecretKey=callers",
        ]
    )
    assert "Secret" not in kinds(docs)
    env = env_of(gateway_container(docs))
    assert env["LIVENESS_CALLERS_FILE"]["value"] == f"{CALLERS_DIR}/callers"
    _, volume = _mounted_file(docs, env["LIVENESS_CALLERS_FILE"]["value"])
    assert volume["secret"]["secretName"] == "gw-callers"
    assert volume["secret"]["items"] == [{"key": "callers", "path": "callers"}]


def test_the_service_never_exposes_the_health_port(render: Render) -> None:
    docs = render(ci_values("tls-auth"), sets=["service.headless=true"])
    health = _ports(gateway_container(docs))["health"]
    for service in (d for d in docs if d["kind"] == "Service"):
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ("grpc", "metrics")
            assert health not in (port["port"], port["targetPort"])
            # h2c would tell a proxy to speak plaintext to the TLS port.
            assert port.get("appProtocol") != "kubernetes.io/h2c"
    plain = only(render(), "Service")
    (grpc,) = [p for p in plain["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc["appProtocol"] == "kubernetes.io/h2c"


def test_health_port_can_be_used_without_tls(render: Render) -> None:
    container = gateway_container(
        render(sets=["gateway.healthPortWithoutTls=true", "gateway.healthPort=8086"])
    )
    assert env_of(container)["LIVENESS_HEALTH_PORT"]["value"] == "8086"
    assert "LIVENESS_TLS_CERT" not in env_of(container)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == 8086


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (["tls.enabled=true"], "tls.enabled needs tls.existingSecret"),
        (["tls.clientAuth=true"], "tls.clientAuth (mTLS) needs tls.enabled"),
        (["auth.enabled=true"], "auth.enabled needs auth.existingSecret"),
        (["auth.enabled=true", "auth.existingSecret=a", "auth.callers=x"], "not both"),
        (
            ["tls.enabled=true", "tls.existingSecret=t", "gateway.healthPort=9464"],
            "must differ",
        ),
    ],
)
def test_chart_refuses_tls_and_auth_settings_that_cannot_work(
    helm: Path, sets: list[str], complaint: str
) -> None:
    result = run_helm(helm, *template_args(sets=sets))
    assert result.returncode != 0, sets
    assert complaint in result.stderr


# --- the decision audit trail (issue #19) ----------------------------------------------------


def test_audit_is_off_by_default(render: Render) -> None:
    docs = render()
    env = env_of(gateway_container(docs))
    assert not [name for name in env if name.startswith("LIVENESS_AUDIT_")]
    assert "PersistentVolumeClaim" not in kinds(docs)


def test_audit_postgresql_url_and_password_come_from_a_secret(render: Render) -> None:
    docs = render(ci_values("all-features"))
    container = gateway_container(docs)
    url = next(e for e in container["env"] if e["name"] == "LIVENESS_AUDIT_URL")
    assert url["valueFrom"]["secretKeyRef"] == {"name": "liveness-audit-db", "key": "url"}
    env = env_of(container)
    assert "LIVENESS_AUDIT_PASSWORD" not in env
    password_file = env["LIVENESS_AUDIT_PASSWORD_FILE"]["value"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert password_file.startswith(mounts["audit-secret"]["mountPath"] + "/")
    assert mounts["audit-secret"]["readOnly"] is True
    assert env["LIVENESS_AUDIT_JOURNAL_DIR"]["value"].startswith(mounts["audit"]["mountPath"] + "/")
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["audit"]
    assert volumes["audit-secret"]["secret"]["secretName"] == "liveness-audit-db"
    assert env["LIVENESS_AUDIT_REFUSED"]["value"] == "1"
    assert env["LIVENESS_AUDIT_GROUP_COMMIT_MS"]["value"] == "5"
    assert only(docs, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"


def test_audit_sqlite_is_one_replica_on_a_volume(render: Render) -> None:
    docs = render(ci_values("audit-sqlite"))
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    claim = only(docs, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["audit"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    env = env_of(gateway_container(docs))
    assert env["LIVENESS_AUDIT_URL"]["value"] == "sqlite:/var/lib/liveness-gateway/audit.db"
    assert env["LIVENESS_AUDIT_DURABILITY"]["value"] == "async"
    existing = render(ci_values("audit-sqlite"), sets=["audit.sqlite.existingClaim=decisions"])
    assert "PersistentVolumeClaim" not in kinds(existing)


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (["audit.enabled=true", "audit.store=sqlite"], "replicaCount"),
        (["audit.enabled=true", "audit.store=sqlite", "replicaCount=1",
          "autoscaling.enabled=true"], "enabled"),
        (["audit.store=mysql"], "store"),
        (["audit.durability=sometimes"], "durability"),
        (["audit.journal.maxBytes=10"], "maxBytes"),
        (["audit.retentionDays=-1"], "retentionDays"),
    ],
)  # fmt: skip
def test_schema_rejects_bad_audit_values(helm: Path, sets: list[str], complaint: str) -> None:
    result = run_helm(helm, *template_args(sets=sets))
    assert result.returncode != 0, sets
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_chart_refuses_postgresql_without_its_secret(helm: Path) -> None:
    result = run_helm(helm, *template_args(sets=["audit.enabled=true"]))
    assert result.returncode != 0
    assert "audit.postgresql.existingSecret" in result.stderr
