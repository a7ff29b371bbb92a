"""``livenessctl audit list`` and ``audit get`` against the real gateway's audit trail."""

from __future__ import annotations

import secrets
from pathlib import Path

from tests.test_cli import livenessctl


def _detect(target: str, tmp_path: Path, score: str) -> str:
    request_id = f"audit-cli-{secrets.token_hex(6)}"
    path = tmp_path / f"{request_id}.bin"
    path.write_bytes(f"SANDBOX:score={score}".encode())
    run = livenessctl("--request-id", request_id, "detect", path, target=target)
    assert run.code == 0, run.stderr
    return request_id


def test_audit_list_filters_and_get_reads_one(target: str, tmp_path: Path) -> None:
    request_id = _detect(target, tmp_path, "0.995")
    run = livenessctl(
        "audit", "list", "--json", "--filter", f'request_id = "{request_id}"', target=target
    )
    assert run.code == 0, run.stderr
    listed = run.json()
    assert listed["next_page_token"] == ""
    [decision] = listed["decisions"]
    assert (decision["rpc"], decision["verdict"], decision["code"]) == ("Detect", "hack", "OK")
    assert decision["score"] == 0.995
    assert decision["vendor_request_id"].startswith("TID")
    got = livenessctl("audit", "get", decision["id"], "--json", target=target)
    assert got.code == 0, got.stderr
    assert got.json()["decision"] == decision
    human = livenessctl("audit", "get", decision["id"], target=target)
    assert human.code == 0, human.stderr
    lines = dict(line.split(None, 1) for line in human.stdout.splitlines())
    assert lines["request_id"] == request_id
    assert lines["liveness_data_sha256"] != ""


def test_audit_list_pages_to_the_end(target: str, tmp_path: Path) -> None:
    ids = {_detect(target, tmp_path, "0.1") for _ in range(3)}
    first = livenessctl("audit", "list", "--json", "--page-size", "1", target=target)
    assert first.code == 0, first.stderr
    token = first.json()["next_page_token"]
    assert token
    second = livenessctl(
        "audit", "list", "--json", "--page-size", "1", "--page-token", token, target=target
    )
    assert second.json()["decisions"][0]["id"] != first.json()["decisions"][0]["id"]
    everything = livenessctl("audit", "list", "--json", "--page-size", "2", "--all", target=target)
    assert everything.code == 0, everything.stderr
    out = everything.json()
    assert out["next_page_token"] == ""
    assert ids <= {d["request_id"] for d in out["decisions"]}
    human = livenessctl("audit", "list", "--page-size", "1", target=target)
    assert human.code == 0
    assert human.stdout.splitlines()[-1].startswith("next page: --page-token ")


def test_audit_list_bad_filter_is_a_usage_class_exit(target: str) -> None:
    run = livenessctl("audit", "list", "--filter", "colour = red", target=target)
    assert run.code == 3  # InvalidArgument
    assert "filter" in run.stderr
    missing = livenessctl("audit", "get", "01HF7YCMK0QSNBCWSYJ2BZ0GMD", target=target)
    assert missing.code == 1  # NOT_FOUND: any other failure
