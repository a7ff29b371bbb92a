"""Typed, immutable results of the three RPCs, converted from the generated messages.

Every result carries ``request_id``: the gateway's ``x-request-id`` from the call's trailing
metadata (the id its logs and traces are filed under); and ``idempotency_key``: the
``request_id`` field the call sent (AIP-155; always set on an upload, see
:mod:`liveness_client.idempotency`), ``""`` when none was sent.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields
from typing import Any

from liveness_client._proto.liveness.v1 import liveness_pb2 as pb


class Verdict(enum.Enum):
    """The gateway's decision: ``HACK`` when ``score > threshold``, ``REVIEW`` inside the
    operator's review band (when one is set), else ``LIVE``."""

    UNSPECIFIED = "UNSPECIFIED"
    LIVE = "LIVE"
    HACK = "HACK"
    REVIEW = "REVIEW"

    @classmethod
    def from_proto(cls, value: int) -> Verdict:
        match value:
            case pb.VERDICT_LIVE:
                return cls.LIVE
            case pb.VERDICT_HACK:
                return cls.HACK
            case pb.VERDICT_REVIEW:
                return cls.REVIEW
            case _:
                return cls.UNSPECIFIED


@dataclass(frozen=True)
class UploadResult:
    """Liveness data stored at the vendor: pass ``liveness_data_id`` to ``detect`` later."""

    liveness_data_id: str
    vendor_request_id: str
    request_id: str = ""
    """The gateway's ``x-request-id`` for this call."""
    idempotency_key: str = ""
    """The upload's ``request_id`` (the caller's, or the one made for it): passing it again as
    ``idempotency_key`` resends the same upload without a second vendor object."""

    @classmethod
    def from_proto(
        cls, reply: pb.UploadResponse, request_id: str = "", idempotency_key: str = ""
    ) -> UploadResult:
        return cls(reply.liveness_data_id, reply.vendor_request_id, request_id, idempotency_key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DetectResult:
    """LinkFace's score and the gateway's verdict against the operator's threshold."""

    score: float
    verdict: Verdict
    threshold: float
    liveness_data_id: str
    vendor_request_id: str
    request_id: str = ""
    """The gateway's ``x-request-id`` for this call."""
    idempotency_key: str = ""
    """The ``request_id`` the call sent, ``""`` when none was given."""

    @property
    def is_live(self) -> bool:
        return self.verdict is Verdict.LIVE

    @classmethod
    def from_proto(
        cls, reply: pb.DetectResponse, request_id: str = "", idempotency_key: str = ""
    ) -> DetectResult:
        return cls(
            score=reply.score,
            verdict=Verdict.from_proto(reply.verdict),
            threshold=reply.threshold,
            liveness_data_id=reply.liveness_data_id,
            vendor_request_id=reply.vendor_request_id,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict.value}


@dataclass(frozen=True)
class FaceQuality:
    """AccuAuth's quality and liveness signals; ``None`` means the vendor did not send one."""

    mask_proba: float | None = None
    quality_score: float | None = None
    quality_too_low: bool | None = None
    blur_or_dark: bool | None = None
    has_no_face: bool | None = None
    face_too_small: bool | None = None
    image_too_small: bool | None = None
    masked: bool | None = None
    face_quality_low: bool | None = None
    face_quality_score: float | None = None
    is_live: bool | None = None
    live_proba: float | None = None
    eye_closed: bool | None = None
    eye_score: float | None = None

    @classmethod
    def from_proto(cls, extra: pb.FaceQuality) -> FaceQuality:
        # Every field is proto3 ``optional``: HasField tells "absent" from false/0.
        message: Any = extra  # HasField's stub wants literal field names
        values = {f.name: getattr(extra, f.name) for f in fields(cls) if message.HasField(f.name)}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AntiHackResult:
    """AccuAuth's score, the verdict, and the face image / quality when they were asked for."""

    score: float
    verdict: Verdict
    threshold: float
    vendor_request_id: str
    image: bytes | None = None
    """The decoded face image, when ``return_image`` was set and the vendor sent one."""
    quality: FaceQuality | None = None
    """The quality signals, when ``return_extra`` was set and the vendor sent them."""
    request_id: str = ""
    """The gateway's ``x-request-id`` for this call."""
    idempotency_key: str = ""
    """The ``request_id`` the call sent, ``""`` when none was given."""

    @property
    def is_live(self) -> bool:
        return self.verdict is Verdict.LIVE

    @classmethod
    def from_proto(
        cls, reply: pb.AntiHackResponse, request_id: str = "", idempotency_key: str = ""
    ) -> AntiHackResult:
        return cls(
            score=reply.score,
            verdict=Verdict.from_proto(reply.verdict),
            threshold=reply.threshold,
            vendor_request_id=reply.vendor_request_id,
            image=reply.image or None,
            quality=FaceQuality.from_proto(reply.extra) if reply.HasField("extra") else None,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the image is reported by size, not inlined."""
        return {
            "score": self.score,
            "verdict": self.verdict.value,
            "threshold": self.threshold,
            "vendor_request_id": self.vendor_request_id,
            "image_bytes": len(self.image) if self.image is not None else None,
            "quality": self.quality.to_dict() if self.quality is not None else None,
            "request_id": self.request_id,
            "idempotency_key": self.idempotency_key,
        }
