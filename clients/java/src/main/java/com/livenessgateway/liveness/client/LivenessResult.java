package com.livenessgateway.liveness.client;

import java.util.Objects;

/**
 * A successful call's response with the gateway's request id (the {@code x-request-id} of its
 * trailing metadata), the id its access log and metrics know the call by.
 *
 * @param response the RPC's response message
 * @param requestId the gateway's request id; "" only if a gateway did not send one
 * @param <T> the response message type
 */
public record LivenessResult<T>(T response, String requestId) {
  public LivenessResult {
    Objects.requireNonNull(response, "response");
    Objects.requireNonNull(requestId, "requestId");
  }
}
