"""Reading the rich error details of a failed call, as a caller would."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from liveness_gateway import DOMAIN

DETAILS_KEY = "grpc-status-details-bin"


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    status: status_pb2.Status
    info: error_details_pb2.ErrorInfo

    def detail(self, kind: type[Message]) -> Message | None:
        found = [d for d in self.status.details if d.Is(kind.DESCRIPTOR)]
        assert len(found) <= 1, f"more than one {kind.DESCRIPTOR.name}"
        if not found:
            return None
        message = kind()
        found[0].Unpack(message)
        return message

    @property
    def retry_delay_s(self) -> float | None:
        info = self.detail(error_details_pb2.RetryInfo)
        if info is None:
            return None
        assert isinstance(info, error_details_pb2.RetryInfo)
        return info.retry_delay.seconds + info.retry_delay.nanos / 1e9


def failure_of(err: grpc.aio.AioRpcError) -> Failure:
    """Parse and check the invariants every gateway error must hold."""
    raw = [v for k, v in (err.trailing_metadata() or ()) if k == DETAILS_KEY]
    assert len(raw) == 1, f"no {DETAILS_KEY} on {err.code()}: {err.details()}"
    status = status_pb2.Status.FromString(raw[0])
    assert status.code == err.code().value[0]
    assert status.message == err.details()
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, "exactly one ErrorInfo"
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.domain == DOMAIN
    assert info.reason.isupper()
    assert " " not in info.reason
    return Failure(err.code(), err.details() or "", status, info)
