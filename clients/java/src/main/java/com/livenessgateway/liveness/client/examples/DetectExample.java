package com.livenessgateway.liveness.client.examples;

import com.google.protobuf.ByteString;
import com.livenessgateway.liveness.client.LivenessClient;
import com.livenessgateway.liveness.client.LivenessException;
import com.livenessgateway.liveness.client.LivenessResult;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;

/**
 * Scores one liveness-data vector with the gateway:
 * {@code mvn -q exec:java -Dexec.args='SANDBOX:score=0.995'} (LIVENESS_TARGET, default
 * localhost:50051, in plaintext as `make serve` runs it).
 */
public final class DetectExample {
  private DetectExample() {}

  public static void main(String[] args) {
    String target = System.getenv().getOrDefault("LIVENESS_TARGET", "localhost:50051");
    String data = args.length > 0 ? args[0] : "SANDBOX:score=0.995";
    int exitCode;
    try (LivenessClient client = LivenessClient.newBuilder(target).plaintext().build()) {
      LivenessResult<DetectResponse> result =
          client.detect(
              DetectRequest.newBuilder().setLivenessData(ByteString.copyFromUtf8(data)).build());
      DetectResponse reply = result.response();
      System.out.printf(
          "score=%s verdict=%s threshold=%s request_id=%s%n",
          reply.getScore(), reply.getVerdict(), reply.getThreshold(), result.requestId());
      exitCode = 0;
    } catch (LivenessException e) {
      System.out.printf(
          "failed: code=%s reason=%s request_id=%s retry_delay=%s metadata=%s%n",
          e.getCode(),
          e.getReason(),
          e.getRequestId(),
          e.getRetryDelay().map(Object::toString).orElse("none"),
          e.getErrorMetadata());
      exitCode = 1;
    }
    System.exit(exitCode);
  }
}
