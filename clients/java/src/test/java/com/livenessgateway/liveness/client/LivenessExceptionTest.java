package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** LivenessException unpacks grpc-status-details-bin without a server. */
class LivenessExceptionTest {
  @Test
  void reasonMetadataAndRetryDelayComeFromTheDetails() {
    com.google.rpc.Status rich =
        com.google.rpc.Status.newBuilder()
            .setCode(Code.RESOURCE_EXHAUSTED_VALUE)
            .setMessage("slow down")
            .addDetails(
                Any.pack(
                    ErrorInfo.newBuilder()
                        .setReason(Reasons.RATE_LIMIT_EXCEEDED)
                        .setDomain(Reasons.DOMAIN)
                        .putMetadata("vendor", "linkface")
                        .build()))
            .addDetails(
                Any.pack(
                    RetryInfo.newBuilder()
                        .setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(7))
                        .build()))
            .build();
    LivenessException e = LivenessException.from(StatusProto.toStatusRuntimeException(rich));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getCode());
    assertEquals(Reasons.RATE_LIMIT_EXCEEDED, e.getReason());
    assertEquals(Reasons.DOMAIN, e.getDomain());
    assertEquals(Map.of("vendor", "linkface"), e.getErrorMetadata());
    assertEquals(Duration.ofSeconds(7), e.getRetryDelay().orElseThrow());
    assertSame(e, LivenessException.from(e));
  }

  @Test
  void anErrorWithoutDetailsHasNoReasonAndNoRetryDelay() {
    LivenessException e =
        LivenessException.from(Status.UNAVAILABLE.withDescription("refused").asRuntimeException());
    assertEquals(Status.Code.UNAVAILABLE, e.getCode());
    assertEquals("", e.getReason());
    assertTrue(e.getRetryDelay().isEmpty());
    assertEquals(Status.Code.UNKNOWN, LivenessException.from(new IllegalStateException()).getCode());
  }
}
