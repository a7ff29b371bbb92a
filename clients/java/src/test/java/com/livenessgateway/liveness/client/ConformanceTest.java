package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.Gson;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.livenessgateway.liveness.v1.AntiHackRequest;
import com.livenessgateway.liveness.v1.AntiHackResponse;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;
import com.livenessgateway.liveness.v1.ErrorReason;
import com.livenessgateway.liveness.v1.UploadRequest;
import com.livenessgateway.liveness.v1.UploadResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

/**
 * clients/conformance.json, case by case in order, each with a new client at its default
 * settings, against a gateway started with the table's gateway_env. Each case checks the code,
 * the typed reason, the request id, the vendor calls the sandbox counted, the elapsed time,
 * and, from every attempt the channel made (seen by a stream tracer), that no attempt followed
 * a "do not resend" (-1) pushback or came sooner than the advised one.
 */
@Tag("conformance")
class ConformanceTest {
  private static final Metadata.Key<String> PUSHBACK =
      Metadata.Key.of("grpc-retry-pushback-ms", Metadata.ASCII_STRING_MARSHALLER);
  /** The service config's maxAttempts. */
  private static final int MAX_ATTEMPTS = 3;

  private static Map<String, Object> table;

  private static final java.util.regex.Pattern UUID_V4 =
      java.util.regex.Pattern.compile(
          "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");

  /** Case name -> the liveness_data_id its result had (the cases run in order). */
  private static final Map<String, String> DATA_IDS = new java.util.concurrent.ConcurrentHashMap<>();

  @BeforeAll
  @SuppressWarnings("unchecked")
  static void readTable() throws IOException {
    String path = System.getProperty("liveness.conformance.table");
    assertNotNull(path, "liveness.conformance.table is set by the pom");
    table = new Gson().fromJson(Files.readString(Path.of(path)), Map.class);
    // The gateway inherits the environment this JVM has: check it is the table's.
    Map<String, String> env = (Map<String, String>) table.get("gateway_env");
    for (Map.Entry<String, String> e : env.entrySet()) {
      assertEquals(
          e.getValue(),
          System.getenv(e.getKey()),
          "the gateway must run with the table's gateway_env (make test-client-java sets it)");
    }
  }

  /** One attempt of a call as the channel made it. */
  static final class Attempt {
    /**
     * When the attempt's headers went on the wire. Not when its tracer or stream was made:
     * grpc-java makes a retry's stream as it schedules the retry, before the backoff.
     */
    volatile long startNanos;
    volatile long trailersNanos;
    volatile Long pushbackMs;
    volatile Status status;
  }

  /** Records every attempt (including retries) of the calls on its channel. */
  static final class Attempts implements ClientInterceptor {
    final List<Attempt> attempts = new ArrayList<>();

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      ClientStreamTracer.Factory factory =
          new ClientStreamTracer.Factory() {
            @Override
            public ClientStreamTracer newClientStreamTracer(
                ClientStreamTracer.StreamInfo info, Metadata headers) {
              Attempt attempt = new Attempt();
              synchronized (attempts) {
                attempts.add(attempt);
              }
              return new ClientStreamTracer() {
                @Override
                public void outboundHeaders() {
                  attempt.startNanos = System.nanoTime();
                }

                @Override
                public void inboundTrailers(Metadata trailers) {
                  attempt.trailersNanos = System.nanoTime();
                  String pushback = trailers.get(PUSHBACK);
                  attempt.pushbackMs = pushback == null ? null : Long.parseLong(pushback);
                }

                @Override
                public void streamClosed(Status status) {
                  attempt.status = status;
                }
              };
            }
          };
      return next.newCall(method, options.withStreamTracerFactory(factory));
    }

    List<Attempt> snapshot() {
      synchronized (attempts) {
        return List.copyOf(attempts);
      }
    }
  }

  @TestFactory
  @SuppressWarnings("unchecked")
  Stream<DynamicTest> everyCaseOfTheTable() {
    List<Map<String, Object>> cases = (List<Map<String, Object>>) table.get("cases");
    assertFalse(cases.isEmpty());
    System.out.printf("%-60s %-18s %-22s %6s %8s %8s%n",
        "conformance case", "code", "reason", "vendor", "attempts", "elapsed");
    return cases.stream()
        .map(c -> DynamicTest.dynamicTest((String) c.get("name"), () -> run(c)));
  }

  private static Message request(Message.Builder builder, Map<String, Object> fields) {
    for (Map.Entry<String, Object> e : fields.entrySet()) {
      FieldDescriptor field = builder.getDescriptorForType().findFieldByName(e.getKey());
      if (field == null) {
        fail("no field " + e.getKey() + " in " + builder.getDescriptorForType().getFullName());
      }
      Object value = e.getValue();
      builder.setField(
          field,
          switch (field.getType()) {
            case BYTES -> ByteString.copyFromUtf8((String) value);
            case STRING -> value;
            case BOOL -> value;
            default -> throw new AssertionError("unsupported field type " + field);
          });
    }
    return builder.build();
  }

  @SuppressWarnings("unchecked")
  private static void run(Map<String, Object> c) {
    String rpc = (String) c.get("rpc");
    Map<String, Object> fields = (Map<String, Object>) c.get("request");
    Attempts attempts = new Attempts();
    String code;
    String reason;
    String requestId;
    String key;
    String dataId = "";
    Double score = null;
    long before = Gateway.vendorCalls();
    long start = System.nanoTime();
    try (LivenessClient client =
        LivenessClient.newBuilder(Gateway.target()).plaintext().intercept(attempts).build()) {
      LivenessResult<? extends Message> result =
          switch (rpc) {
            case "Detect" -> client.detect(
                (DetectRequest) request(DetectRequest.newBuilder(), fields));
            case "AntiHack" -> client.antiHack(
                (AntiHackRequest) request(AntiHackRequest.newBuilder(), fields));
            case "Upload" -> client.upload(
                (UploadRequest) request(UploadRequest.newBuilder(), fields));
            default -> throw new AssertionError("unknown rpc " + rpc);
          };
      code = "OK";
      reason = "";
      requestId = result.requestId();
      key = result.idempotencyKey();
      if (result.response() instanceof DetectResponse r) {
        score = r.getScore();
        dataId = r.getLivenessDataId();
      } else if (result.response() instanceof AntiHackResponse r) {
        score = r.getScore();
      } else if (result.response() instanceof UploadResponse r) {
        dataId = r.getLivenessDataId();
      }
    } catch (LivenessException e) {
      code = e.getCode().name();
      reason = e.getReason() == ErrorReason.ERROR_REASON_UNSPECIFIED ? "" : e.getReason().name();
      requestId = e.getRequestId();
      key = e.getIdempotencyKey();
      assertTrue(
          e.getReason() != ErrorReason.UNRECOGNIZED, "reason outside the catalogue: " + e);
    }
    double elapsedS = (System.nanoTime() - start) / 1e9;
    long vendorCalls = Gateway.vendorCalls() - before;
    List<Attempt> made = attempts.snapshot();
    System.out.printf("%-60s %-18s %-22s %6d %8d %7.2fs%n",
        c.get("name"), code, reason, vendorCalls, made.size(), elapsedS);

    String name = (String) c.get("name");
    assertEquals(c.get("code"), code, name + ": code");
    assertEquals(c.get("reason"), reason, name + ": reason");
    assertFalse(requestId.isEmpty(), name + ": a request id on the result or error");
    if (c.containsKey("score")) {
      assertNotNull(score, name + ": a score");
      assertEquals(((Number) c.get("score")).doubleValue(), score, 1e-9, name + ": score");
    }
    // The idempotency key: the request's own, or one the client made for an upload.
    Object given = fields.get("request_id");
    if (given != null) {
      assertEquals(given, key, name + ": idempotency key");
    } else if (rpc.equals("Upload")) {
      assertTrue(UUID_V4.matcher(key).matches(), name + ": idempotency key " + key);
    } else {
      assertEquals("", key, name + ": idempotency key");
    }
    DATA_IDS.put(name, dataId);
    Object earlier = c.get("same_liveness_data_id_as");
    if (earlier != null) {
      String want = DATA_IDS.get((String) earlier);
      assertTrue(want != null && !want.isEmpty(), name + ": no liveness_data_id from " + earlier);
      assertEquals(want, dataId, name + ": liveness_data_id of " + earlier);
    }
    assertEquals(
        ((Number) c.get("vendor_calls")).longValue(), vendorCalls, name + ": vendor calls");
    double minElapsed = ((Number) c.get("min_elapsed_s")).doubleValue();
    assertTrue(elapsedS >= minElapsed, name + ": took " + elapsedS + " s, at least " + minElapsed);

    assertTrue(!made.isEmpty() && made.size() <= MAX_ATTEMPTS, name + ": attempts " + made.size());
    for (int i = 0; i < made.size(); i++) {
      Attempt a = made.get(i);
      boolean last = i == made.size() - 1;
      assertTrue(a.startNanos != 0, name + ": attempt " + (i + 1) + " never went on the wire");
      if (!last) {
        assertNotNull(a.pushbackMs, name + ": attempt " + (i + 1) + " failed without pushback");
        assertTrue(a.pushbackMs >= 0, name + ": attempt " + (i + 2) + " after pushback -1");
        long waitedMs = TimeUnit.NANOSECONDS.toMillis(made.get(i + 1).startNanos - a.trailersNanos);
        assertTrue(
            waitedMs >= a.pushbackMs,
            name + ": attempt " + (i + 2) + " after " + waitedMs + " ms, advised " + a.pushbackMs);
      } else if (!code.equals("OK") && made.size() < MAX_ATTEMPTS) {
        // The call ended before maxAttempts: the gateway said not to resend, or the deadline.
        assertTrue(
            a.pushbackMs != null && a.pushbackMs < 0 || code.equals("DEADLINE_EXCEEDED")
                || !code.equals("UNAVAILABLE") && !code.equals("RESOURCE_EXHAUSTED"),
            name + ": the last attempt's pushback was " + a.pushbackMs);
      }
    }
  }
}
