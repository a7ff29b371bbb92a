"""The blocking client against the real gateway."""

from __future__ import annotations

import pytest

from liveness_client import (
    InvalidArgument,
    LivenessClient,
    QuotaExceeded,
    RateLimited,
    Reason,
    Verdict,
)
from tests.conftest import FileServer


def test_detect_sources(sync_client: LivenessClient, file_server: FileServer) -> None:
    assert sync_client.detect(data=b"SANDBOX:score=0.995").verdict is Verdict.HACK
    assert sync_client.detect(url=file_server.add("sync.bin", b"SANDBOX:score=0.3")).score == 0.3
    uploaded = sync_client.upload(data=b"SANDBOX:score=0.4")
    assert sync_client.detect(liveness_data_id=uploaded.liveness_data_id).score == 0.4


def test_upload_url(sync_client: LivenessClient, file_server: FileServer) -> None:
    uploaded = sync_client.upload(url=file_server.add("sync-up.bin", b"SANDBOX:score=0.3"))
    assert uploaded.liveness_data_id


def test_anti_hack(sync_client: LivenessClient) -> None:
    result = sync_client.anti_hack(image_id="SANDBOX:score=0.99", return_image=True)
    assert (result.score, result.verdict) == (0.99, Verdict.HACK)
    assert result.image is not None
    assert result.quality is None
    assert sync_client.anti_hack(data=b"SANDBOX:score=0.5", return_extra=True).quality


def test_health(sync_client: LivenessClient) -> None:
    assert sync_client.health() == "SERVING"


def test_errors(sync_client: LivenessClient) -> None:
    with pytest.raises(RateLimited) as limited:
        sync_client.detect(data=b"SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=0.2")
    assert limited.value.retry_after == 0.2
    assert len(limited.value.request_id) == 32
    with pytest.raises(QuotaExceeded) as quota:
        sync_client.anti_hack(data=b"SANDBOX:status=OUT_OF_QUOTA", request_id="sync-quota")
    assert quota.value.reason is Reason["OUT_OF_QUOTA"]
    assert quota.value.request_id == "sync-quota"
    assert quota.value.vendor == "accuauth"
    with pytest.raises(InvalidArgument):
        sync_client.detect(liveness_data_id=" ")


def test_every_result_carries_the_gateways_request_id(sync_client: LivenessClient) -> None:
    uploaded = sync_client.upload(data=b"SANDBOX:score=0.4", request_id="sync-up")
    assert uploaded.request_id == "sync-up"
    detected = sync_client.detect(liveness_data_id=uploaded.liveness_data_id, request_id="s-d")
    assert detected.request_id == "s-d"
    assert sync_client.anti_hack(data=b"SANDBOX:score=0.5", request_id="s-a").request_id == "s-a"
    # An id the gateway will not use (too long) is replaced: the result has the gateway's own.
    replaced = sync_client.detect(data=b"SANDBOX:score=0.5", request_id="x" * 200).request_id
    assert len(replaced) == 32
    assert replaced != "x" * 200
