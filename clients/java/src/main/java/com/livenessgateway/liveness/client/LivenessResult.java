package com.livenessgateway.liveness.client;

import java.util.Objects;

/**
 * A successful call's response with the gateway's request id (the {@code x-request-id} of its
 * trailing metadata), the id its access log and metrics know the call by, and the idempotency
 * key the call sent (see {@link IdempotencyKeys}).
 *
 * @param response the RPC's response message
 * @param requestId the gateway's request id; "" only if a gateway did not send one
 * @param idempotencyKey the request_id (AIP-155) the call sent: always set for an upload (the
 *     request's own, or the one the client made for it), "" when a Detect or AntiHack had none
 * @param <T> the response message type
 */
public record LivenessResult<T>(T response, String requestId, String idempotencyKey) {
  public LivenessResult {
    Objects.requireNonNull(response, "response");
    Objects.requireNonNull(requestId, "requestId");
    Objects.requireNonNull(idempotencyKey, "idempotencyKey");
  }

  /** A result of a call that sent no idempotency key. */
  public LivenessResult(T response, String requestId) {
    this(response, requestId, "");
  }
}
