package com.livenessgateway.liveness.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import com.livenessgateway.liveness.v1.ErrorReason;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A failed call with the gateway's rich error details decoded: the gRPC code, the typed
 * {@link ErrorReason} (from google.rpc.ErrorInfo), its domain and metadata, the
 * google.rpc.RetryInfo delay, google.rpc.QuotaFailure and google.rpc.BadRequest, and the
 * gateway's request id.
 *
 * <p>The client has already resent what the gateway allowed (the shipped service config honours
 * its grpc-retry-pushback-ms); do not add a retry loop on top.
 *
 * <pre>{@code
 * try {
 *   client.detect(request);
 * } catch (LivenessException e) {
 *   switch (e.getReason()) {
 *     case NO_FACE_DETECTED -> askForAnotherCapture();
 *     case CALLER_RATE_LIMITED -> log.warn("rate limited, retry in {} ({})",
 *         e.getRetryDelay().orElseThrow(), e.getRequestId());
 *     default -> throw e;
 *   }
 * }
 * }</pre>
 */
public final class LivenessException extends RuntimeException {
  private static final long serialVersionUID = 2L;

  /** The ErrorInfo domain of every error the gateway produces. */
  public static final String DOMAIN = "liveness.v1";

  private final transient Status.Code code;
  private final String reasonName;
  private final ErrorReason reason;
  private final String domain;
  private final Map<String, String> errorMetadata;
  private final transient Duration retryDelay;
  private final transient QuotaFailure quotaFailure;
  private final transient BadRequest badRequest;
  private final transient List<Any> details;
  private final String requestId;
  private final String idempotencyKey;

  private LivenessException(
      Status status,
      com.google.rpc.Status rich,
      String requestId,
      String idempotencyKey,
      Throwable cause) {
    super(message(status, requestId), cause);
    this.code = status.getCode();
    this.requestId = requestId;
    this.idempotencyKey = idempotencyKey;
    this.details = rich == null ? List.of() : List.copyOf(rich.getDetailsList());
    ErrorInfo info = unpack(details, ErrorInfo.class);
    this.reasonName = info == null ? "" : info.getReason();
    this.reason = reasonOf(reasonName);
    this.domain = info == null ? "" : info.getDomain();
    this.errorMetadata = info == null ? Map.of() : Map.copyOf(info.getMetadataMap());
    RetryInfo retry = unpack(details, RetryInfo.class);
    this.retryDelay =
        retry == null || !retry.hasRetryDelay()
            ? null
            : Duration.ofSeconds(
                retry.getRetryDelay().getSeconds(), retry.getRetryDelay().getNanos());
    this.quotaFailure = unpack(details, QuotaFailure.class);
    this.badRequest = unpack(details, BadRequest.class);
  }

  private static String message(Status status, String requestId) {
    StringBuilder text = new StringBuilder(status.getCode().toString());
    if (status.getDescription() != null && !status.getDescription().isEmpty()) {
      text.append(": ").append(status.getDescription());
    }
    if (!requestId.isEmpty()) {
      text.append(" (request id ").append(requestId).append(')');
    }
    return text.toString();
  }

  /** The enum value named reason; UNRECOGNIZED for a name this client does not know yet. */
  static ErrorReason reasonOf(String name) {
    if (name.isEmpty()) {
      return ErrorReason.ERROR_REASON_UNSPECIFIED;
    }
    for (ErrorReason value : ErrorReason.values()) {
      if (value != ErrorReason.UNRECOGNIZED && value.name().equals(name)) {
        return value;
      }
    }
    return ErrorReason.UNRECOGNIZED;
  }

  /**
   * What a failed call closed with: its status and trailing metadata, and the idempotency key
   * it sent ("" for none).
   */
  static LivenessException from(
      Status status, Metadata trailers, String requestId, String idempotencyKey) {
    com.google.rpc.Status rich =
        trailers == null ? null : StatusProto.fromStatusAndTrailers(status, trailers);
    return new LivenessException(
        status, rich, requestId, idempotencyKey, status.asRuntimeException(trailers));
  }

  /** A failure the client found before sending anything (no request id: nothing was sent). */
  static LivenessException local(Status status, com.google.rpc.Status rich, String key) {
    return new LivenessException(status, rich, "", key, status.asRuntimeException());
  }

  /**
   * Builds a LivenessException from what a grpc-java call threw (a StatusRuntimeException or
   * StatusException, possibly wrapped, as from a generated stub). Anything else becomes code
   * UNKNOWN without a reason.
   */
  public static LivenessException from(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof LivenessException e) {
        return e;
      }
    }
    Status status = Status.fromThrowable(t);
    Metadata trailers = Status.trailersFromThrowable(t);
    com.google.rpc.Status rich = StatusProto.fromThrowable(t);
    return new LivenessException(status, rich, LivenessClient.requestId(null, trailers), "", t);
  }

  private static <T extends Message> T unpack(List<Any> details, Class<T> type) {
    for (Any any : details) {
      if (any.is(type)) {
        try {
          return any.unpack(type);
        } catch (InvalidProtocolBufferException e) {
          return null; // a malformed detail leaves the plain status, never a crash
        }
      }
    }
    return null;
  }

  /** The gRPC status code. */
  public Status.Code getCode() {
    return code;
  }

  /**
   * The ErrorInfo reason as the contract's enum. ERROR_REASON_UNSPECIFIED when the failure
   * never reached the gateway (a refused connection, the client's own deadline); UNRECOGNIZED
   * for a reason newer than this client ({@link #getReasonName()} has it).
   */
  public ErrorReason getReason() {
    return reason;
  }

  /** ErrorInfo.reason as sent, e.g. "OUT_OF_QUOTA"; "" without an ErrorInfo. */
  public String getReasonName() {
    return reasonName;
  }

  /** ErrorInfo.domain, {@value #DOMAIN}; "" without an ErrorInfo. */
  public String getDomain() {
    return domain;
  }

  /** ErrorInfo.metadata: vendor, httpStatus, vendorRequestId, vendorStatus... where known. */
  public Map<String, String> getErrorMetadata() {
    return errorMetadata;
  }

  /** RetryInfo.retry_delay: when a resend may succeed; empty when none can. */
  public Optional<Duration> getRetryDelay() {
    return Optional.ofNullable(retryDelay);
  }

  /** QuotaFailure: which caller's or vendor's limit was hit; empty unless a quota error. */
  public Optional<QuotaFailure> getQuotaFailure() {
    return Optional.ofNullable(quotaFailure);
  }

  /** BadRequest: the request fields validation refused; empty unless INVALID_REQUEST. */
  public Optional<BadRequest> getBadRequest() {
    return Optional.ofNullable(badRequest);
  }

  /**
   * The gateway's request id (x-request-id), to quote in a support request; "" when the call
   * never reached the gateway.
   */
  public String getRequestId() {
    return requestId;
  }

  /**
   * The request_id (AIP-155 idempotency key) the call sent: always set for an upload (the
   * request's own, or the one the client made for it); "" when none was sent or the failure
   * did not come from a call of this client. Resend the same request with it ({@code
   * setRequestId}) to get the first call's outcome instead of a second vendor call.
   */
  public String getIdempotencyKey() {
    return idempotencyKey;
  }

  /** Every detail of the google.rpc.Status, decoded or not. */
  public List<Any> getDetails() {
    return details;
  }
}
