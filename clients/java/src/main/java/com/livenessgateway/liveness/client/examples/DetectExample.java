package com.livenessgateway.liveness.client.examples;

import com.google.protobuf.ByteString;
import com.livenessgateway.liveness.client.LivenessClient;
import com.livenessgateway.liveness.client.LivenessException;
import com.livenessgateway.liveness.client.Reasons;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;
import io.grpc.InsecureChannelCredentials;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * Scores one liveness-data vector with the gateway:
 * {@code mvn -q exec:java -Dexec.args='SANDBOX:score=0.995'} (LIVENESS_TARGET, default
 * localhost:50051).
 */
public final class DetectExample {
  private DetectExample() {}

  public static void main(String[] args) {
    String target = System.getenv().getOrDefault("LIVENESS_TARGET", "localhost:50051");
    String data = args.length > 0 ? args[0] : "SANDBOX:score=0.995";
    int exitCode;
    try (LivenessClient client = LivenessClient.create(target, InsecureChannelCredentials.create())) {
      DetectResponse reply =
          client
              .withTimeout(Duration.ofSeconds(15))
              .detect(
                  DetectRequest.newBuilder()
                      .setLivenessData(ByteString.copyFrom(data, StandardCharsets.UTF_8))
                      .build());
      System.out.printf(
          "score=%s verdict=%s threshold=%s%n",
          reply.getScore(), reply.getVerdict(), reply.getThreshold());
      exitCode = 0;
    } catch (LivenessException e) {
      if (Reasons.RATE_LIMIT_EXCEEDED.equals(e.getReason())) {
        System.out.println("rate limited: retry in " + e.getRetryDelay().orElse(Duration.ofSeconds(1)));
      } else {
        System.out.printf(
            "failed: code=%s reason=%s metadata=%s%n", e.getCode(), e.getReason(), e.getErrorMetadata());
      }
      exitCode = 1;
    }
    System.exit(exitCode);
  }
}
