package com.livenessgateway.liveness.client;

import com.google.gson.Gson;
import com.google.gson.JsonParseException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The gateway's shipped service config (protos/liveness/v1/service_config.json, copied into the
 * jar by the build): retries on UNAVAILABLE and RESOURCE_EXHAUSTED as the gateway's
 * grpc-retry-pushback-ms allows, at most 3 attempts, retry throttling and a 20 s timeout.
 */
final class ServiceConfig {
  static final String RESOURCE = "service_config.json";

  private ServiceConfig() {}

  /** A fresh copy each time (grpc-java wants JSON numbers as Double, as Gson reads them). */
  static Map<String, ?> load() {
    try (InputStream in = ServiceConfig.class.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException(
            RESOURCE + " is missing from the jar: the build copies it from protos/liveness/v1");
      }
      try (Reader reader = new InputStreamReader(in, StandardCharsets.UTF_8)) {
        Map<?, ?> parsed = new Gson().fromJson(reader, Map.class);
        if (parsed == null) {
          throw new IllegalStateException(RESOURCE + " is empty");
        }
        @SuppressWarnings("unchecked")
        Map<String, ?> config = (Map<String, ?>) parsed;
        return config;
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (JsonParseException e) {
      throw new IllegalStateException(RESOURCE + " is not JSON: " + e.getMessage(), e);
    }
  }
}
