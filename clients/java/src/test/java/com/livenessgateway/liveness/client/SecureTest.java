package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import com.livenessgateway.liveness.v1.AntiHackRequest;
import com.livenessgateway.liveness.v1.AntiHackResponse;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;
import com.livenessgateway.liveness.v1.ErrorReason;
import io.grpc.Status;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * TLS, mTLS and bearer tokens against a live gateway that requires client certificates and
 * authenticates callers (scripts/with-secure-gateway.sh sets it up; make test-client-java runs
 * it). Without it the tests fail rather than skip.
 */
@Tag("secure")
class SecureTest {
  private static Path file(String name) {
    return Path.of(Gateway.env("LIVENESS_TEST_TLS_DIR"), name);
  }

  private static LivenessClient.Builder mtls(String cert) {
    return LivenessClient.newBuilder(Gateway.target())
        .mtls(file("ca.pem"), file(cert + ".pem"), file(cert + ".key"))
        .timeout(Duration.ofSeconds(10));
  }

  private static DetectRequest detect() {
    return DetectRequest.newBuilder()
        .setLivenessData(ByteString.copyFromUtf8("SANDBOX:score=0.25"))
        .build();
  }

  private static AntiHackRequest antiHack() {
    return AntiHackRequest.newBuilder()
        .setLivenessData(ByteString.copyFromUtf8("SANDBOX:score=0.75"))
        .build();
  }

  @Test
  void aCallerKnownByItsClientCertificateCallsWhatItMay() {
    try (LivenessClient client = mtls("cert").build()) {
      LivenessResult<DetectResponse> result = client.detect(detect());
      assertEquals(0.25, result.response().getScore(), 1e-9);
      assertFalse(result.requestId().isEmpty());
      LivenessException e = assertThrows(LivenessException.class, () -> client.antiHack(antiHack()));
      assertEquals(Status.Code.PERMISSION_DENIED, e.getCode());
      assertEquals(ErrorReason.CALLER_NOT_ALLOWED, e.getReason());
      assertFalse(e.getRequestId().isEmpty());
    }
  }

  @Test
  void aBearerTokenIdentifiesItsCallerOverTls() {
    try (LivenessClient client =
        mtls("anon").callCredentials(BearerToken.of(Gateway.env("LIVENESS_TEST_TOKEN"))).build()) {
      LivenessResult<AntiHackResponse> result = client.antiHack(antiHack());
      assertEquals(0.75, result.response().getScore(), 1e-9);
      assertFalse(result.requestId().isEmpty());
    }
  }

  @Test
  void withoutAKnownCertificateOrTokenTheCallerIsUnknown() {
    try (LivenessClient client = mtls("anon").build()) {
      LivenessException e = assertThrows(LivenessException.class, () -> client.detect(detect()));
      assertEquals(Status.Code.UNAUTHENTICATED, e.getCode());
      assertEquals(ErrorReason.CALLER_UNKNOWN, e.getReason());
      assertFalse(e.getRequestId().isEmpty());
      LivenessException wrong =
          assertThrows(
              LivenessException.class,
              () -> client.withCallCredentials(BearerToken.of("not-the-token")).detect(detect()));
      assertEquals(ErrorReason.CALLER_UNKNOWN, wrong.getReason());
    }
  }

  @Test
  void tlsWithoutAClientCertificateIsRefusedAtTheHandshake() {
    try (LivenessClient client =
        LivenessClient.newBuilder(Gateway.target())
            .tls(file("ca.pem"))
            .timeout(Duration.ofSeconds(10))
            .build()) {
      LivenessException e = assertThrows(LivenessException.class, () -> client.detect(detect()));
      assertEquals(Status.Code.UNAVAILABLE, e.getCode(), e.toString());
      assertEquals(ErrorReason.ERROR_REASON_UNSPECIFIED, e.getReason());
      assertEquals("", e.getRequestId());
    }
  }

  @Test
  void aServerCertificateFromAnUntrustedCaIsRefused() {
    // tls(): the system's roots, which do not hold the test CA.
    try (LivenessClient client =
        LivenessClient.newBuilder(Gateway.target())
            .mtls(null, file("cert.pem"), file("cert.key"))
            .timeout(Duration.ofSeconds(10))
            .build()) {
      LivenessException e = assertThrows(LivenessException.class, () -> client.detect(detect()));
      assertEquals(Status.Code.UNAVAILABLE, e.getCode(), e.toString());
      assertEquals("", e.getRequestId());
    }
  }
}
