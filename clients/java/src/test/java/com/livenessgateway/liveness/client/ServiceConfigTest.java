package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.google.gson.Gson;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The service config in the jar is the one beside the proto, and grpc-java accepts it. */
class ServiceConfigTest {
  private static Path protoCopy() {
    String dir = System.getProperty("liveness.protos.dir");
    assertNotNull(dir, "liveness.protos.dir is set by the pom");
    return Path.of(dir, "service_config.json");
  }

  @Test
  void theJarsCopyIsByteForByteTheProtosOne() throws IOException {
    byte[] shipped;
    try (InputStream in = ServiceConfig.class.getResourceAsStream(ServiceConfig.RESOURCE)) {
      assertNotNull(in, "service_config.json is in the jar");
      shipped = in.readAllBytes();
    }
    assertEquals(Files.readString(protoCopy()), new String(shipped, java.nio.charset.StandardCharsets.UTF_8));
  }

  @Test
  void itRetriesAsTheContractSays() throws IOException {
    Map<String, ?> config = LivenessClient.serviceConfig();
    assertEquals(new Gson().fromJson(Files.readString(protoCopy()), Map.class), config);
    Map<?, ?> method = (Map<?, ?>) ((List<?>) config.get("methodConfig")).get(0);
    Map<?, ?> retry = (Map<?, ?>) method.get("retryPolicy");
    assertEquals(3.0, retry.get("maxAttempts"));
    assertEquals(List.of("UNAVAILABLE", "RESOURCE_EXHAUSTED"), retry.get("retryableStatusCodes"));
    assertEquals("20s", method.get("timeout"));
    assertNotNull(config.get("retryThrottling"));
    assertEquals(LivenessClient.DEFAULT_DEADLINE.toSeconds() + "s", method.get("timeout"));
  }

  @Test
  void grpcJavaTakesItAsTheDefaultServiceConfig() throws InterruptedException {
    // The channel parses the default service config when it is built; a bad one throws here.
    ManagedChannel channel =
        LivenessClient.configure(
                Grpc.newChannelBuilder("127.0.0.1:1", InsecureChannelCredentials.create()))
            .build();
    channel.shutdownNow();
    channel.awaitTermination(5, TimeUnit.SECONDS);
  }
}
