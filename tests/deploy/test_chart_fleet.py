"""The chart in fleet mode: the Redis URL and password from a Secret, the fallback's share."""

from __future__ import annotations

import base64

import yaml

from tests.deploy.conftest import Render, ci_values, env_of, gateway_container, only

REDIS_URL = "rediss://liveness@redis.redis.svc:6380/0"
REDIS_PASSWORD = "ci-redis-password-value"


def test_fleet_values_take_url_and_password_from_the_existing_secret(render: Render) -> None:
    docs = render(ci_values("fleet"))
    assert not [
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-state")
    ]
    env = env_of(gateway_container(docs))
    assert env["LIVENESS_STATE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "liveness-redis",
        "key": "url",
    }
    assert env["LIVENESS_STATE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "liveness-redis",
        "key": "password",
    }
    # 3 replicas x 2 workers share the limits while Redis is unreachable.
    assert env["LIVENESS_STATE_EXPECTED_PROCESSES"]["value"] == "6"
    assert env["LIVENESS_STATE_QUOTA_FALLBACK"]["value"] == "closed"
    assert env["LIVENESS_STATE_RATE_FALLBACK"]["value"] == "local"


def test_the_chart_made_state_secret_holds_url_and_password_and_nothing_else_does(
    render: Render,
) -> None:
    docs = render(ci_values("all-features"))
    secret = only(docs, "Secret", "-state")
    assert base64.b64decode(secret["data"]["redis-url"]).decode() == REDIS_URL
    assert base64.b64decode(secret["data"]["redis-password"]).decode() == REDIS_PASSWORD
    for doc in docs:
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        assert REDIS_PASSWORD not in text, doc["kind"]
        assert REDIS_URL not in text, doc["kind"]
    env = env_of(gateway_container(docs))
    assert env["LIVENESS_STATE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "redis-url"
    assert env["LIVENESS_STATE_EXPECTED_PROCESSES"]["value"] == "4"
    annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/state" in annotations  # a new URL or password rolls the pods


def test_without_redis_no_state_url_and_the_share_defaults_to_the_processes(
    render: Render,
) -> None:
    docs = render()
    env = env_of(gateway_container(docs))
    assert "LIVENESS_STATE_URL" not in env
    assert "LIVENESS_STATE_PASSWORD" not in env
    assert env["LIVENESS_STATE_EXPECTED_PROCESSES"]["value"] == "2"  # replicaCount x 1 worker
    assert env["LIVENESS_IDEMPOTENCY_TTL_S"]["value"] == "3600"
    assert env["LIVENESS_UPLOAD_DEDUPE_TTL_S"]["value"] == "600"
