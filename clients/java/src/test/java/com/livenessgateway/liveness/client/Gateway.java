package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.Gson;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;

/** The live gateway scripts/with-gateway.sh started: its address and its sandbox's counters. */
final class Gateway {
  private static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private Gateway() {}

  /** An environment variable the harness sets; fails (never skips) without it. */
  static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      fail(
          name
              + " is not set: run `make test-client-java`, or run `mvn -Pinterop test` under "
              + "scripts/with-gateway.sh");
    }
    return value;
  }

  static String target() {
    return env("LIVENESS_TARGET");
  }

  /** A new client on its own channel, in plaintext as with-gateway.sh serves. */
  static LivenessClient newClient() {
    return LivenessClient.newBuilder(target()).plaintext().build();
  }

  /** How many vendor calls the sandbox has answered so far (GET /_sandbox/stats, "total"). */
  static long vendorCalls() {
    URI uri = URI.create(env("LIVENESS_SANDBOX_URL").replaceAll("/+$", "") + "/_sandbox/stats");
    try {
      HttpResponse<String> reply =
          HTTP.send(
              HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(5)).GET().build(),
              HttpResponse.BodyHandlers.ofString());
      if (reply.statusCode() != 200) {
        fail(uri + " answered " + reply.statusCode());
      }
      Object total = new Gson().fromJson(reply.body(), Map.class).get("total");
      if (!(total instanceof Number n)) {
        throw new AssertionError(uri + " has no numeric total: " + reply.body());
      }
      return n.longValue();
    } catch (IOException e) {
      throw new AssertionError("reading " + uri + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted reading " + uri, e);
    }
  }
}
