package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import com.livenessgateway.liveness.v1.ErrorReason;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;

/** LivenessException decodes grpc-status-details-bin and the request id without a server. */
class LivenessExceptionTest {
  private static StatusRuntimeException failure(String reason, Any... extra) {
    com.google.rpc.Status.Builder rich =
        com.google.rpc.Status.newBuilder()
            .setCode(Code.RESOURCE_EXHAUSTED_VALUE)
            .setMessage("slow down")
            .addDetails(
                Any.pack(
                    ErrorInfo.newBuilder()
                        .setReason(reason)
                        .setDomain(LivenessException.DOMAIN)
                        .putMetadata("vendor", "linkface")
                        .build()));
    for (Any any : extra) {
      rich.addDetails(any);
    }
    Metadata trailers = new Metadata();
    trailers.put(LivenessClient.REQUEST_ID_KEY, "req-123");
    return StatusProto.toStatusRuntimeException(rich.build(), trailers);
  }

  @Test
  void theTypedReasonAndEveryDetailAreDecoded() {
    LivenessException e =
        LivenessException.from(
            failure(
                "CALLER_RATE_LIMITED",
                Any.pack(
                    RetryInfo.newBuilder()
                        .setRetryDelay(
                            com.google.protobuf.Duration.newBuilder()
                                .setSeconds(1)
                                .setNanos(500_000_000))
                        .build()),
                Any.pack(
                    QuotaFailure.newBuilder()
                        .addViolations(
                            QuotaFailure.Violation.newBuilder()
                                .setSubject("caller:checkout")
                                .setDescription("20/s"))
                        .build())));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getCode());
    assertEquals(ErrorReason.CALLER_RATE_LIMITED, e.getReason());
    assertEquals("CALLER_RATE_LIMITED", e.getReasonName());
    assertEquals(LivenessException.DOMAIN, e.getDomain());
    assertEquals(Map.of("vendor", "linkface"), e.getErrorMetadata());
    assertEquals(Duration.ofMillis(1500), e.getRetryDelay().orElseThrow());
    assertEquals("caller:checkout", e.getQuotaFailure().orElseThrow().getViolations(0).getSubject());
    assertTrue(e.getBadRequest().isEmpty());
    assertEquals("req-123", e.getRequestId());
    assertTrue(e.getMessage().contains("req-123"), e.getMessage());
    assertEquals(3, e.getDetails().size());
  }

  @Test
  void badRequestNamesTheField() {
    LivenessException e =
        LivenessException.from(
            failure(
                "INVALID_REQUEST",
                Any.pack(
                    BadRequest.newBuilder()
                        .addFieldViolations(
                            BadRequest.FieldViolation.newBuilder()
                                .setField("source")
                                .setDescription("one of liveness_data, ... is required"))
                        .build())));
    assertEquals(ErrorReason.INVALID_REQUEST, e.getReason());
    assertEquals("source", e.getBadRequest().orElseThrow().getFieldViolations(0).getField());
    assertTrue(e.getRetryDelay().isEmpty());
  }

  @Test
  void aReasonNewerThanTheClientIsUnrecognizedButKeptByName() {
    LivenessException e = LivenessException.from(failure("SOMETHING_NEW"));
    assertEquals(ErrorReason.UNRECOGNIZED, e.getReason());
    assertEquals("SOMETHING_NEW", e.getReasonName());
  }

  @Test
  void everyCatalogueNameMapsToItsValue() {
    for (ErrorReason value : ErrorReason.values()) {
      if (value != ErrorReason.UNRECOGNIZED && value != ErrorReason.ERROR_REASON_UNSPECIFIED) {
        assertEquals(value, LivenessException.reasonOf(value.name()));
      }
    }
    assertEquals(ErrorReason.UNRECOGNIZED, LivenessException.reasonOf("UNRECOGNIZED"));
  }

  @Test
  void anErrorThatNeverReachedTheGatewayHasNoReasonAndNoRequestId() {
    LivenessException e =
        LivenessException.from(Status.UNAVAILABLE.withDescription("refused").asRuntimeException());
    assertEquals(Status.Code.UNAVAILABLE, e.getCode());
    assertEquals(ErrorReason.ERROR_REASON_UNSPECIFIED, e.getReason());
    assertEquals("", e.getReasonName());
    assertEquals("", e.getRequestId());
    assertTrue(e.getRetryDelay().isEmpty());
    assertEquals(Status.Code.UNKNOWN, LivenessException.from(new IllegalStateException()).getCode());
  }

  @Test
  void aWrappedLivenessExceptionIsReturnedAsItIs() {
    LivenessException e = LivenessException.from(failure("OUT_OF_QUOTA"));
    assertSame(e, LivenessException.from(e));
    assertSame(e, LivenessException.from(new CompletionException(e)));
  }
}
