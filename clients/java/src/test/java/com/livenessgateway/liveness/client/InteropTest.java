package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;
import com.livenessgateway.liveness.v1.Verdict;
import io.grpc.InsecureChannelCredentials;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Talks to a running gateway on its sandbox, whose address is in LIVENESS_TARGET
 * ({@code make test-client-java} starts one). Without it the tests fail rather than skip.
 */
class InteropTest {
  private static LivenessClient client;

  @BeforeAll
  static void connect() {
    String target = System.getenv("LIVENESS_TARGET");
    if (target == null || target.isEmpty()) {
      fail(
          "LIVENESS_TARGET is not set: run `make test-client-java`, or start "
              + "`liveness-gateway serve --sandbox` and set LIVENESS_TARGET=host:port");
    }
    client = LivenessClient.create(target, InsecureChannelCredentials.create());
  }

  @AfterAll
  static void close() {
    if (client != null) {
      client.close();
    }
  }

  private static DetectResponse detect(byte[] data) {
    return client
        .withTimeout(Duration.ofSeconds(30))
        .detect(DetectRequest.newBuilder().setLivenessData(ByteString.copyFrom(data)).build());
  }

  private static DetectResponse detect(String data) {
    return detect(data.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void detectReturnsTheVectorsScoreAndHack() {
    DetectResponse reply = detect("SANDBOX:score=0.995");
    assertEquals(0.995, reply.getScore(), 1e-9);
    assertEquals(Verdict.VERDICT_HACK, reply.getVerdict());
  }

  @Test
  void outOfQuotaIsResourceExhaustedWithThatReason() {
    LivenessException e =
        assertThrows(LivenessException.class, () -> detect("SANDBOX:status=OUT_OF_QUOTA"));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getCode());
    assertEquals(Reasons.OUT_OF_QUOTA, e.getReason());
    assertEquals(Reasons.DOMAIN, e.getDomain());
    assertTrue(e.getErrorMetadata().containsKey("vendor"), e.getErrorMetadata().toString());
    assertFalse(e.getRetryDelay().isPresent());
  }

  @Test
  void rateLimitCarriesTheRetryDelay() {
    LivenessException e =
        assertThrows(
            LivenessException.class,
            () -> detect("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=7"));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getCode());
    assertEquals(Reasons.RATE_LIMIT_EXCEEDED, e.getReason());
    assertEquals(Duration.ofSeconds(7), e.getRetryDelay().orElseThrow());
  }

  @Test
  void aFiveMiBPayloadGoesThrough() {
    byte[] head = "SANDBOX:score=0.5\n".getBytes(StandardCharsets.UTF_8);
    byte[] data = new byte[5 * 1024 * 1024];
    Arrays.fill(data, (byte) 'x');
    System.arraycopy(head, 0, data, 0, head.length);
    DetectResponse reply = detect(data);
    assertEquals(0.5, reply.getScore(), 0.0);
    assertEquals(Verdict.VERDICT_LIVE, reply.getVerdict());
  }

  @Test
  void oneByteOverFiveMiBIsAnInvalidRequest() {
    byte[] data = new byte[5 * 1024 * 1024 + 1];
    LivenessException e = assertThrows(LivenessException.class, () -> detect(data));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
    assertEquals(Reasons.INVALID_REQUEST, e.getReason());
  }
}
