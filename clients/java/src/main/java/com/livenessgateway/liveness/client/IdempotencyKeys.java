package com.livenessgateway.liveness.client;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.livenessgateway.liveness.v1.ErrorReason;
import io.grpc.Status;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * The idempotency key (AIP-155): the {@code request_id} field of UploadRequest, DetectRequest
 * and AntiHackRequest ({@code setRequestId}), a UUID in its canonical 36-character form. Within
 * the gateway's idempotency window the same caller sending the same key with the same input
 * gets the first call's result (or error) without a second vendor call; the same key with
 * another input is refused INVALID_ARGUMENT, reason REQUEST_ID_REUSED. Not the x-request-id
 * correlation id ({@link LivenessResult#requestId()}), which names one call in the gateway's
 * logs.
 *
 * <p>Upload creates an object at the vendor, so {@link LivenessClient#upload} gives a request
 * without a key a fresh one, made once per call and sent unchanged on every attempt grpc-java
 * makes; {@link LivenessResult#idempotencyKey()} and {@link
 * LivenessException#getIdempotencyKey()} give it back for a resend of the same upload. Detect
 * and AntiHack are reads at the vendor, which the gateway retries itself: they send a key only
 * when the request has one.
 */
public final class IdempotencyKeys {
  private static final Pattern CANONICAL_UUID =
      Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");

  private IdempotencyKeys() {}

  /** A random (version 4) UUID in its canonical form: the key an upload without one gets. */
  public static String newKey() {
    return UUID.randomUUID().toString();
  }

  /**
   * Whether key is a UUID in its canonical 36-character form (8-4-4-4-12 hex digits, either
   * case), the form the gateway accepts as a request_id.
   */
  public static boolean isValid(String key) {
    return key != null && CANONICAL_UUID.matcher(key).matches();
  }

  /**
   * The gateway's answer to a malformed request_id, made by the client before anything is sent:
   * INVALID_ARGUMENT, reason INVALID_REQUEST, a BadRequest naming request_id.
   */
  static LivenessException invalid(String key) {
    String shown = key.length() > 64 ? key.substring(0, 64) + "..." : key;
    Status status =
        Status.INVALID_ARGUMENT.withDescription(
            "request_id must be a UUID in its canonical 36-character form"
                + " (checked by the client; nothing was sent)");
    com.google.rpc.Status rich =
        com.google.rpc.Status.newBuilder()
            .setCode(status.getCode().value())
            .setMessage(status.getDescription())
            .addDetails(
                Any.pack(
                    ErrorInfo.newBuilder()
                        .setReason(ErrorReason.INVALID_REQUEST.name())
                        .setDomain(LivenessException.DOMAIN)
                        .build()))
            .addDetails(
                Any.pack(
                    BadRequest.newBuilder()
                        .addFieldViolations(
                            BadRequest.FieldViolation.newBuilder()
                                .setField("request_id")
                                .setDescription(
                                    "\"" + shown + "\" is not a UUID (8-4-4-4-12 hex digits)"))
                        .build()))
            .build();
    return LivenessException.local(status, rich, key);
  }
}
