"""The one settings table: flags, variables, defaults, the README, and checks in the types."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest
from liveness_gateway import settings
from liveness_gateway.cli import _parser
from liveness_gateway.config import (
    ConfigError,
    GatewayConfig,
    ResilienceConfig,
    StateConfig,
    TlsConfig,
    TracingConfig,
    VendorConfig,
)
from liveness_gateway.vendors import ENDPOINTS

README = Path(__file__).resolve().parent.parent / "README.md"
CREDS = {
    "LINKFACE_API_ID": "lf",
    "LINKFACE_API_SECRET": "lf-secret",
    "ACCUAUTH_API_ID": "aa",
    "ACCUAUTH_API_SECRET": "aa-secret",
}


def config(argv: list[str], env: dict[str, str] | None = None) -> GatewayConfig:
    env = {**CREDS, **(env or {})}
    args = _parser().parse_args(["serve", *argv])
    return settings.gateway_config(settings.resolve("serve", args, env), env)


@pytest.mark.parametrize(
    ("command", "marker"), [("serve", "settings"), ("sandbox", "sandbox-settings")]
)
def test_the_readme_tables_are_the_settings_table(command: str, marker: str) -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker}:begin[^>]*-->\n(.*?)<!-- {marker}:end -->", text, re.S)
    assert found, f"README.md has no {marker} block"
    assert found.group(1) == settings.markdown_table(command=command), (
        f"README.md's {command} settings differ from the code: regenerate them with "
        f"`python -m liveness_gateway.settings {command}`"
    )


def test_every_setting_lands_in_the_config_or_the_cli() -> None:
    fields = {f.name for f in dataclasses.fields(GatewayConfig)}
    nested = {
        "resilience": {f.name for f in dataclasses.fields(ResilienceConfig)},
        "tls": {f.name for f in dataclasses.fields(TlsConfig)},
        "tracing": {f.name for f in dataclasses.fields(TracingConfig)},
        "state": {f.name for f in dataclasses.fields(StateConfig)},
    }
    for s in settings.SETTINGS:
        head, _, rest = s.key.partition(".")
        if head in ("cli", "sandbox", "linkface", "accuauth"):
            continue
        if head in nested:
            assert rest in nested[head], s.key
        else:
            assert s.key in fields, s.key
    flags = [s.flag for s in settings.for_command("serve") if s.flag]
    envs = [s.env for s in settings.SETTINGS]
    assert len(flags) == len(set(flags))
    assert len(envs) == len(set(envs))


def test_every_endpoint_has_its_timeout_setting() -> None:
    built = config(
        ["--linkface-detect-timeout", "3", "--accuauth-anti-hack-timeout", "4"],
        {"LINKFACE_UPLOAD_TIMEOUT_S": "30"},
    )
    assert {e.name: built.vendor(e.vendor).timeout_for(e.name) for e in ENDPOINTS} == {
        "upload_liveness_data": 30.0,
        "liveness_hack_detect": 3.0,
        "liveness_anti_hack": 4.0,
    }


def test_flag_beats_variable_beats_default() -> None:
    assert config([]).port == 50051
    assert config([], {"LIVENESS_PORT": "7000"}).port == 7000
    assert config(["--port", "7001"], {"LIVENESS_PORT": "7000"}).port == 7001
    assert config([]).reflection is True
    assert config(["--no-reflection"]).reflection is False
    assert config([], {"LIVENESS_REFLECTION": "off"}).reflection is False
    assert config([], {"LIVENESS_VENDOR_RATE": "0"}).resilience.vendor_rate_per_s is None
    assert config([], {"LIVENESS_URL_ALLOW_HOSTS": "a.test, *.b.test"}).url_allow_hosts == (
        "a.test",
        "*.b.test",
    )
    parts = config(["--linkface-detect-file-part", "file"]).linkface.file_parts
    assert parts == {"liveness_hack_detect": "file"}


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        (["--linkface-timeout", "-1"], {}, "--linkface-timeout (LINKFACE_TIMEOUT_S) must be"),
        ([], {"LINKFACE_UPLOAD_TIMEOUT_S": "0"}, "LINKFACE_UPLOAD_TIMEOUT_S) must be"),
        (["--detect-threshold", "1.5"], {}, "--detect-threshold (LIVENESS_DETECT_THRESHOLD)"),
        ([], {"LIVENESS_MAX_ATTEMPTS": "0"}, "--max-attempts (LIVENESS_MAX_ATTEMPTS) must be"),
        ([], {"LIVENESS_VENDOR_RATE": "-2"}, "--vendor-rate (LIVENESS_VENDOR_RATE) must be"),
        ([], {"LIVENESS_GRACE_S": "-1"}, "--grace (LIVENESS_GRACE_S) must be 0 or more"),
        ([], {"LIVENESS_PORT": "seven"}, "LIVENESS_PORT='seven'"),
        ([], {"LINKFACE_BASE_URL": "ftp://x"}, "--linkface-base-url (LINKFACE_BASE_URL)"),
        ([], {"LINKFACE_DETECT_FILE_PART": "blob"}, "LINKFACE_DETECT_FILE_PART must be one of"),
        (["--tls-cert", "c.pem"], {}, "TLS needs both --tls-cert and --tls-key"),
    ],
)
def test_refusals_name_the_flag_and_the_variable(
    argv: list[str], env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config(argv, env)
    assert says in str(caught.value)


def test_bad_flag_values_are_refused_by_argparse() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--linkface-detect-file-part", "blob"])


@pytest.mark.parametrize(
    "build",
    [
        lambda: VendorConfig("linkface", "http://v", "id", "s", timeout_s=0),
        lambda: VendorConfig("linkface", "http://v", "id", "s", timeout_s=float("nan")),
        lambda: VendorConfig("linkface", "v.test", "id", "s"),
        lambda: VendorConfig("linkface", "http://v", "id", "s", endpoint_timeouts_s={"x": -1}),
        lambda: ResilienceConfig(max_in_flight_rpcs=0),
        lambda: ResilienceConfig(vendor_rate_per_s=0),
        lambda: ResilienceConfig(breaker_open_s=0),
        lambda: ResilienceConfig(retry_token_ratio=2),
        lambda: GatewayConfig(LF, AA, detect_threshold=-0.1),
        lambda: GatewayConfig(LF, AA, port=70000),
        lambda: GatewayConfig(LF, AA, grace_s=-1),
    ],
)
def test_the_config_types_check_themselves(build) -> None:
    """Code and tests that build a configuration directly meet the same checks."""
    with pytest.raises(ConfigError):
        build()


LF = VendorConfig("linkface", "http://v", "id", "s")
AA = VendorConfig("accuauth", "http://v", "id", "s")


def test_help_shows_each_variable_and_default() -> None:
    serve = _parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    assert isinstance(serve, argparse.ArgumentParser)
    text = serve.format_help()
    for s in settings.for_command("serve"):
        if s.flag:
            assert f"env {s.env}" in " ".join(text.split()), s.env


def test_tracing_is_configured_by_the_standard_otel_variables() -> None:
    assert config([]).tracing is None, "no OTLP endpoint: tracing stays off"
    built = config(
        [],
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            "OTEL_SERVICE_NAME": "gw",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=id%20checks",
        },
    )
    assert built.tracing == TracingConfig(
        "http://collector:4317",
        "gw",
        "parentbased_traceidratio",
        0.01,
        {"deployment.environment": "prod", "team": "id checks"},
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "OTEL_RESOURCE_ATTRIBUTES"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ],
)
def test_bad_otel_variables_are_refused_by_name(env: dict[str, str], named: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", **env}
    with pytest.raises(ConfigError, match=named):
        config([], env)
