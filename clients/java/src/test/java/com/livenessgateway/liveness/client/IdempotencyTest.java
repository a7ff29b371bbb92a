package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import com.livenessgateway.liveness.v1.AntiHackRequest;
import com.livenessgateway.liveness.v1.AntiHackResponse;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;
import com.livenessgateway.liveness.v1.ErrorReason;
import com.livenessgateway.liveness.v1.LivenessCheckGrpc;
import com.livenessgateway.liveness.v1.UploadRequest;
import com.livenessgateway.liveness.v1.UploadResponse;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The idempotency key (the requests' request_id, AIP-155) against a stand-in for the gateway in
 * the test's own process (grpc-java's in-process transport, the client's own channel settings):
 * it records every attempt's request_id and x-request-id and fails the first attempts with a
 * chosen status and the gateway's grpc-retry-pushback-ms, so the service config's resends are
 * seen.
 */
class IdempotencyTest {
  private static final Pattern UUID_V4 =
      Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  private static final Metadata.Key<String> PUSHBACK =
      Metadata.Key.of("grpc-retry-pushback-ms", Metadata.ASCII_STRING_MARSHALLER);
  private static final Context.Key<String> X_REQUEST_ID = Context.key("x-request-id");

  private record Attempt(String key, String xRequestId) {}

  /** Fails the first failFirst attempts with code and reason, then answers. */
  private static final class RecordingGateway extends LivenessCheckGrpc.LivenessCheckImplBase {
    final List<Attempt> attempts = new CopyOnWriteArrayList<>();
    final int failFirst;
    final Status.Code code;
    final String reason;

    RecordingGateway(int failFirst, Status.Code code, String reason) {
      this.failFirst = failFirst;
      this.code = code;
      this.reason = reason;
    }

    private <T> boolean failed(String key, StreamObserver<T> observer) {
      attempts.add(new Attempt(key, X_REQUEST_ID.get()));
      if (attempts.size() > failFirst) {
        return false;
      }
      // As the gateway does: resend after 10 ms what may be resent, never the caller's fault
      // (grpc-java resends any code a pushback of 0 or more allows).
      Metadata trailers = new Metadata();
      trailers.put(PUSHBACK, code == Status.Code.INVALID_ARGUMENT ? "-1" : "10");
      com.google.rpc.Status rich =
          com.google.rpc.Status.newBuilder()
              .setCode(code.value())
              .setMessage(reason)
              .addDetails(
                  Any.pack(
                      ErrorInfo.newBuilder()
                          .setReason(reason)
                          .setDomain(LivenessException.DOMAIN)
                          .build()))
              .build();
      observer.onError(StatusProto.toStatusRuntimeException(rich, trailers));
      return true;
    }

    @Override
    public void upload(UploadRequest request, StreamObserver<UploadResponse> observer) {
      if (!failed(request.getRequestId(), observer)) {
        observer.onNext(UploadResponse.newBuilder().setLivenessDataId("ld-1").build());
        observer.onCompleted();
      }
    }

    @Override
    public void detect(DetectRequest request, StreamObserver<DetectResponse> observer) {
      if (!failed(request.getRequestId(), observer)) {
        observer.onNext(DetectResponse.newBuilder().setScore(0.5).build());
        observer.onCompleted();
      }
    }

    @Override
    public void antiHack(AntiHackRequest request, StreamObserver<AntiHackResponse> observer) {
      if (!failed(request.getRequestId(), observer)) {
        observer.onNext(AntiHackResponse.newBuilder().setScore(0.5).build());
        observer.onCompleted();
      }
    }
  }

  /** Puts the attempt's x-request-id where the servicer can read it. */
  private static final ServerInterceptor X_REQUEST_ID_TO_CONTEXT =
      new ServerInterceptor() {
        @Override
        public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
            ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
          String id = headers.get(LivenessClient.REQUEST_ID_KEY);
          Context context = Context.current().withValue(X_REQUEST_ID, id == null ? "" : id);
          return Contexts.interceptCall(context, call, headers, next);
        }
      };

  private Server server;
  private ManagedChannel channel;

  private LivenessClient serve(RecordingGateway gateway) throws IOException {
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .directExecutor()
            .addService(ServerInterceptors.intercept(gateway, X_REQUEST_ID_TO_CONTEXT))
            .build()
            .start();
    channel = LivenessClient.configure(InProcessChannelBuilder.forName(name)).build();
    return LivenessClient.forChannel(channel);
  }

  @AfterEach
  void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
  }

  private static UploadRequest uploadBytes() {
    return UploadRequest.newBuilder().setLivenessData(ByteString.copyFromUtf8("x")).build();
  }

  @Test
  void anUploadKeyIsMadeOnceAndSentOnEveryAttempt() throws IOException {
    RecordingGateway gateway = new RecordingGateway(2, Status.Code.UNAVAILABLE, "OVERLOADED");
    LivenessClient client = serve(gateway);
    UploadRequest request = uploadBytes();
    LivenessResult<UploadResponse> result = client.upload(request);
    assertEquals(3, gateway.attempts.size(), "two refused attempts and the one that answered");
    String key = result.idempotencyKey();
    assertTrue(UUID_V4.matcher(key).matches(), key);
    for (Attempt a : gateway.attempts) {
      assertEquals(key, a.key());
    }
    assertEquals("ld-1", result.response().getLivenessDataId());
    assertEquals("", request.getRequestId(), "the caller's request is unchanged");
    // The next upload is another upload: another key.
    LivenessResult<UploadResponse> second = client.upload(request);
    assertTrue(UUID_V4.matcher(second.idempotencyKey()).matches());
    assertNotEquals(key, second.idempotencyKey());
    assertEquals(second.idempotencyKey(), gateway.attempts.get(3).key());
  }

  @Test
  void aFailedUploadNamesItsKeyAndAResendCarriesIt() throws IOException {
    RecordingGateway gateway = new RecordingGateway(3, Status.Code.UNAVAILABLE, "OVERLOADED");
    LivenessClient client = serve(gateway);
    LivenessException e = assertThrows(LivenessException.class, () -> client.upload(uploadBytes()));
    assertEquals(Status.Code.UNAVAILABLE, e.getCode());
    assertEquals(3, gateway.attempts.size());
    String key = e.getIdempotencyKey();
    assertTrue(UUID_V4.matcher(key).matches(), key);
    for (Attempt a : gateway.attempts) {
      assertEquals(key, a.key());
    }
    LivenessResult<UploadResponse> resent =
        client.upload(uploadBytes().toBuilder().setRequestId(key).build());
    assertEquals(key, resent.idempotencyKey());
    assertEquals(key, gateway.attempts.get(3).key());
  }

  @Test
  void detectAndAntiHackSendAKeyOnlyWhenGiven() throws IOException {
    RecordingGateway gateway = new RecordingGateway(0, Status.Code.OK, "");
    LivenessClient client = serve(gateway);
    String mine = "0F8FAD5B-D9CB-469F-A165-70867728950E";
    DetectRequest detect =
        DetectRequest.newBuilder().setLivenessData(ByteString.copyFromUtf8("x")).build();
    assertEquals("", client.detect(detect).idempotencyKey());
    assertEquals(mine, client.detect(detect.toBuilder().setRequestId(mine).build()).idempotencyKey());
    assertEquals(
        "", client.antiHack(AntiHackRequest.newBuilder().setImageId("img").build()).idempotencyKey());
    assertEquals(
        mine, client.upload(uploadBytes().toBuilder().setRequestId(mine).build()).idempotencyKey());
    assertEquals(
        List.of("", mine, "", mine), gateway.attempts.stream().map(Attempt::key).toList());
    for (Attempt a : gateway.attempts) {
      assertNotEquals(mine, a.xRequestId(), "the key is not the x-request-id");
    }
  }

  @Test
  void aMalformedKeyIsRefusedAsTheGatewayWouldBeforeAnythingIsSent() throws IOException {
    RecordingGateway gateway = new RecordingGateway(0, Status.Code.OK, "");
    LivenessClient client = serve(gateway);
    for (String bad :
        List.of(
            "order-4711",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g")) {
      LivenessException e =
          assertThrows(
              LivenessException.class,
              () -> client.upload(uploadBytes().toBuilder().setRequestId(bad).build()));
      assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
      assertEquals(ErrorReason.INVALID_REQUEST, e.getReason());
      assertEquals(LivenessException.DOMAIN, e.getDomain());
      assertEquals("request_id", e.getBadRequest().orElseThrow().getFieldViolations(0).getField());
      assertEquals(bad, e.getIdempotencyKey());
      LivenessException async =
          LivenessException.from(
              assertThrows(
                  Exception.class,
                  () ->
                      client
                          .detectAsync(
                              DetectRequest.newBuilder()
                                  .setLivenessDataId("ld")
                                  .setRequestId(bad)
                                  .build())
                          .join()));
      assertEquals(ErrorReason.INVALID_REQUEST, async.getReason());
    }
    assertEquals(0, gateway.attempts.size());
  }

  @Test
  void requestIdReusedIsTheTypedReasonAndIsNotResent() throws IOException {
    RecordingGateway gateway =
        new RecordingGateway(3, Status.Code.INVALID_ARGUMENT, "REQUEST_ID_REUSED");
    LivenessClient client = serve(gateway);
    String key = IdempotencyKeys.newKey();
    LivenessException e =
        assertThrows(
            LivenessException.class,
            () -> client.upload(uploadBytes().toBuilder().setRequestId(key).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
    assertEquals(ErrorReason.REQUEST_ID_REUSED, e.getReason());
    assertEquals(key, e.getIdempotencyKey());
    assertEquals(1, gateway.attempts.size());
  }

  @Test
  void newKeyAndIsValid() {
    for (int i = 0; i < 100; i++) {
      String key = IdempotencyKeys.newKey();
      assertTrue(UUID_V4.matcher(key).matches(), key);
      assertTrue(IdempotencyKeys.isValid(key));
    }
    assertTrue(IdempotencyKeys.isValid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
    assertTrue(IdempotencyKeys.isValid("00000000-0000-0000-0000-000000000000"), "any UUID");
    for (String bad :
        new String[] {
          "", null, "{0f8fad5b-d9cb-469f-a165-70867728950e}", "0f8fad5b-d9cb-469f-a165-70867728950e "
        }) {
      assertFalse(IdempotencyKeys.isValid(bad), String.valueOf(bad));
    }
  }
}
