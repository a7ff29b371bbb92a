package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.livenessgateway.liveness.v1.AntiHackRequest;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;
import com.livenessgateway.liveness.v1.ErrorReason;
import com.livenessgateway.liveness.v1.UploadRequest;
import com.livenessgateway.liveness.v1.UploadResponse;
import com.livenessgateway.liveness.v1.Verdict;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Against the live gateway on its sandbox in LIVENESS_TARGET, with default settings
 * ({@code make test-client-java} starts one). Without it the tests fail rather than skip.
 */
@Tag("interop")
class InteropTest {
  private static LivenessClient client;

  @BeforeAll
  static void connect() {
    client = Gateway.newClient();
  }

  @AfterAll
  static void close() {
    if (client != null) {
      client.close();
    }
  }

  private static DetectRequest request(byte[] data) {
    return DetectRequest.newBuilder().setLivenessData(ByteString.copyFrom(data)).build();
  }

  private static DetectRequest request(String data) {
    return request(data.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void detectReturnsTheScoreVerdictAndRequestId() {
    LivenessResult<DetectResponse> result = client.detect(request("SANDBOX:score=0.995"));
    assertEquals(0.995, result.response().getScore(), 1e-9);
    assertEquals(Verdict.VERDICT_HACK, result.response().getVerdict());
    assertFalse(result.requestId().isEmpty());
  }

  @Test
  void uploadSendsAnIdempotencyKeyAndDetectOnlyAGivenOne() {
    UploadRequest upload =
        UploadRequest.newBuilder()
            .setLivenessData(ByteString.copyFromUtf8("SANDBOX:score=0.3"))
            .build();
    LivenessResult<UploadResponse> uploaded = client.upload(upload);
    assertTrue(IdempotencyKeys.isValid(uploaded.idempotencyKey()), uploaded.idempotencyKey());
    assertNotEquals(uploaded.requestId(), uploaded.idempotencyKey());
    String mine = IdempotencyKeys.newKey();
    LivenessResult<UploadResponse> again =
        client.upload(upload.toBuilder().setRequestId(mine).build());
    assertEquals(mine, again.idempotencyKey());
    LivenessResult<DetectResponse> byId =
        client.detect(
            DetectRequest.newBuilder()
                .setLivenessDataId(again.response().getLivenessDataId())
                .build());
    assertEquals("", byId.idempotencyKey());
    String other = IdempotencyKeys.newKey(); // one key per request: never reuse one for another
    LivenessException e =
        assertThrows(
            LivenessException.class,
            () ->
                client.detect(
                    request("SANDBOX:status=NO_FACE_DETECTED").toBuilder()
                        .setRequestId(other)
                        .build()));
    assertEquals(ErrorReason.NO_FACE_DETECTED, e.getReason());
    assertEquals(other, e.getIdempotencyKey());
  }

  @Test
  void futuresRunConcurrentlyEachWithItsOwnRequestId() throws Exception {
    List<CompletableFuture<LivenessResult<DetectResponse>>> futures = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      futures.add(client.detectAsync(request("SANDBOX:score=0.1" + i)));
    }
    Set<String> ids = new HashSet<>();
    for (int i = 0; i < futures.size(); i++) {
      LivenessResult<DetectResponse> result = futures.get(i).get(30, TimeUnit.SECONDS);
      assertEquals(Double.parseDouble("0.1" + i), result.response().getScore(), 1e-9);
      ids.add(result.requestId());
    }
    assertEquals(futures.size(), ids.size(), "request ids are distinct: " + ids);
  }

  @Test
  void uploadThenDetectById() {
    LivenessResult<com.livenessgateway.liveness.v1.UploadResponse> uploaded =
        client.upload(
            UploadRequest.newBuilder()
                .setLivenessData(ByteString.copyFromUtf8("SANDBOX:score=0.3"))
                .build());
    String id = uploaded.response().getLivenessDataId();
    assertFalse(id.isEmpty());
    assertFalse(uploaded.requestId().isEmpty());
    LivenessResult<DetectResponse> detected =
        client.detect(DetectRequest.newBuilder().setLivenessDataId(id).build());
    assertEquals(0.3, detected.response().getScore(), 1e-9);
    assertNotEquals(uploaded.requestId(), detected.requestId());
  }

  @Test
  void antiHackAsyncFailsWithTheTypedReason() {
    CompletableFuture<?> future =
        client.antiHackAsync(
            AntiHackRequest.newBuilder()
                .setLivenessData(ByteString.copyFromUtf8("SANDBOX:status=WRONG_LIVENESS_DATA"))
                .build());
    ExecutionException e =
        assertThrows(ExecutionException.class, () -> future.get(30, TimeUnit.SECONDS));
    LivenessException cause = assertInstanceOf(LivenessException.class, e.getCause());
    assertEquals(Status.Code.INVALID_ARGUMENT, cause.getCode());
    assertEquals(ErrorReason.WRONG_LIVENESS_DATA, cause.getReason());
    assertFalse(cause.getRequestId().isEmpty());
  }

  @Test
  void outOfQuotaHasItsReasonQuotaFailureAndRequestId() {
    LivenessException e =
        assertThrows(LivenessException.class, () -> client.detect(request("SANDBOX:status=OUT_OF_QUOTA")));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getCode());
    assertEquals(ErrorReason.OUT_OF_QUOTA, e.getReason());
    assertEquals(LivenessException.DOMAIN, e.getDomain());
    assertTrue(e.getErrorMetadata().containsKey("vendor"), e.getErrorMetadata().toString());
    assertTrue(e.getQuotaFailure().isPresent());
    assertFalse(e.getRetryDelay().isPresent());
    assertFalse(e.getRequestId().isEmpty());
    assertTrue(e.getMessage().contains(e.getRequestId()), e.getMessage());
  }

  @Test
  void aVendorRateLimitCarriesItsRetryDelay() {
    LivenessException e =
        assertThrows(
            LivenessException.class,
            () -> client.detect(request("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=1")));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getCode());
    assertEquals(ErrorReason.RATE_LIMIT_EXCEEDED, e.getReason());
    assertEquals(Duration.ofSeconds(1), e.getRetryDelay().orElseThrow());
    assertTrue(e.getQuotaFailure().isPresent());
  }

  @Test
  void validationNamesTheFieldInBadRequest() {
    LivenessException e =
        assertThrows(LivenessException.class, () -> client.detect(DetectRequest.getDefaultInstance()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
    assertEquals(ErrorReason.INVALID_REQUEST, e.getReason());
    assertTrue(e.getBadRequest().orElseThrow().getFieldViolationsCount() > 0);
    assertFalse(e.getRequestId().isEmpty());
  }

  @Test
  void aFiveMiBPayloadGoesThrough() {
    byte[] head = "SANDBOX:score=0.5\n".getBytes(StandardCharsets.UTF_8);
    byte[] data = new byte[5 * 1024 * 1024];
    Arrays.fill(data, (byte) 'x');
    System.arraycopy(head, 0, data, 0, head.length);
    LivenessResult<DetectResponse> result = client.detect(request(data));
    assertEquals(0.5, result.response().getScore(), 0.0);
    assertEquals(Verdict.VERDICT_LIVE, result.response().getVerdict());
  }

  @Test
  void aFiveMiBRequestIsResentAsTheGatewayAdvises() {
    // grpc-java keeps at most perRpcBufferLimit of a request for resending (1 MiB by default):
    // the client raises it, so a large request gets the same retries as a small one.
    byte[] head =
        "SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=0.2\n".getBytes(StandardCharsets.UTF_8);
    byte[] data = new byte[5 * 1024 * 1024];
    Arrays.fill(data, (byte) 'x');
    System.arraycopy(head, 0, data, 0, head.length);
    // A new client: retry throttling is per channel, and this suite's failures spend tokens.
    try (LivenessClient fresh = Gateway.newClient()) {
      long before = Gateway.vendorCalls();
      LivenessException e =
          assertThrows(LivenessException.class, () -> fresh.detect(request(data)));
      assertEquals(ErrorReason.RATE_LIMIT_EXCEEDED, e.getReason());
      assertEquals(3, Gateway.vendorCalls() - before, "the service config's 3 attempts");
    }
  }

  @Test
  void oneByteOverFiveMiBIsAnInvalidRequest() {
    LivenessException e =
        assertThrows(
            LivenessException.class, () -> client.detect(request(new byte[5 * 1024 * 1024 + 1])));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
    assertEquals(ErrorReason.INVALID_REQUEST, e.getReason());
  }

  @Test
  void aShorterDeadlineEndsASlowCall() {
    long start = System.nanoTime();
    LivenessException e =
        assertThrows(
            LivenessException.class,
            () ->
                client
                    .withTimeout(Duration.ofMillis(500))
                    .detect(request("SANDBOX:delay_ms=3000")));
    long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getCode());
    assertTrue(elapsedMs < 2_500, "ended after " + elapsedMs + " ms");
  }

  @Test
  void cancellingAFutureEndsTheCallWithoutWaitingForTheVendor() {
    CompletableFuture<?> future = client.detectAsync(request("SANDBOX:delay_ms=3000"));
    long start = System.nanoTime();
    assertTrue(future.cancel(true));
    assertThrows(CancellationException.class, () -> future.get(1, TimeUnit.SECONDS));
    assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 1_000);
  }

  @Test
  void aTlsOnlyBearerTokenIsNotSentInPlaintext() {
    LivenessException e =
        assertThrows(
            LivenessException.class,
            () ->
                client
                    .withCallCredentials(BearerToken.of("not-for-plaintext"))
                    .detect(request("SANDBOX:score=0.2")));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getCode());
    assertTrue(e.getMessage().contains("without TLS"), e.getMessage());
    assertEquals("", e.getRequestId(), "the call never reached the gateway");
    // With authentication off the gateway ignores a token it is allowed to receive.
    LivenessResult<DetectResponse> result =
        client
            .withCallCredentials(BearerToken.allowingPlaintext("loopback-token"))
            .detect(request("SANDBOX:score=0.2"));
    assertEquals(0.2, result.response().getScore(), 1e-9);
  }
}
