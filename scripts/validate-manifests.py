#!/usr/bin/env python3
"""Validate rendered Kubernetes manifests offline, strictly (no unknown fields).

Built-in kinds are checked against the Kubernetes OpenAPI schemas that the kubernetes-validate
package ships for the given version. The Prometheus Operator's ServiceMonitor is a CRD with no
schema there: it is checked against the subset of its CRD schema that the chart uses, so that a
typo in a field name still fails.

    validate-manifests.py --kube-version 1.27.0 rendered.yaml [more.yaml ...]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

_STRING = {"type": "string"}
_STRING_MAP = {"type": "object", "additionalProperties": _STRING}
_RELABELINGS = {"type": "array", "items": {"type": "object"}}

# From monitoring.coreos.com_servicemonitors.yaml (prometheus-operator), the fields we render.
SERVICE_MONITOR_V1: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": _STRING,
                "namespace": _STRING,
                "labels": _STRING_MAP,
                "annotations": _STRING_MAP,
            },
            "additionalProperties": False,
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": _STRING,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": _STRING},
                    },
                },
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": _STRING_MAP,
                        "matchExpressions": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": _STRING,
                            "path": _STRING,
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": r"^(0|(([0-9]+)(ms|s|m|h))+)$"},
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": r"^(0|(([0-9]+)(ms|s|m|h))+)$",
                            },
                            "relabelings": _RELABELINGS,
                            "metricRelabelings": _RELABELINGS,
                        },
                    },
                },
            },
        },
    },
}

CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_V1}


def validate(doc: dict[str, Any], kube_version: str) -> None:
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        jsonschema.validate(doc, CRD_SCHEMAS[key])
    else:
        kubernetes_validate.validate(doc, kube_version, strict=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kube-version", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    failures = 0
    count = 0
    for path in args.files:
        with open(path, encoding="utf-8") as stream:
            docs = [d for d in yaml.safe_load_all(stream) if d]
        for doc in docs:
            count += 1
            where = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                validate(doc, args.kube_version)
            except (
                jsonschema.ValidationError,
                kubernetes_validate.ValidationError,
                kubernetes_validate.SchemaNotFoundError,
            ) as exc:
                failures += 1
                print(f"INVALID {where}: {exc}", file=sys.stderr)
    if count == 0:
        print("no manifests to validate", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
