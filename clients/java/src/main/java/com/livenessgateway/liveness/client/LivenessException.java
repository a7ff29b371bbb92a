package com.livenessgateway.liveness.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A failed call with the gateway's rich error details unpacked: the gRPC code, the
 * google.rpc.ErrorInfo reason, domain and metadata, and the google.rpc.RetryInfo delay.
 *
 * <pre>{@code
 * try {
 *   client.detect(request);
 * } catch (LivenessException e) {
 *   if (Reasons.RATE_LIMIT_EXCEEDED.equals(e.getReason())) {
 *     Thread.sleep(e.getRetryDelay().orElse(Duration.ofSeconds(1)).toMillis());
 *   }
 * }
 * }</pre>
 */
public final class LivenessException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final transient Status.Code code;
  private final String reason;
  private final String domain;
  private final Map<String, String> errorMetadata;
  private final transient Duration retryDelay;
  private final transient List<Any> details;

  private LivenessException(
      Status.Code code, String description, com.google.rpc.Status rich, Throwable cause) {
    super(code + (description.isEmpty() ? "" : ": " + description), cause);
    this.code = code;
    this.details = rich == null ? List.of() : List.copyOf(rich.getDetailsList());
    ErrorInfo info = unpack(details, ErrorInfo.class);
    this.reason = info == null ? "" : info.getReason();
    this.domain = info == null ? "" : info.getDomain();
    this.errorMetadata = info == null ? Map.of() : Map.copyOf(info.getMetadataMap());
    RetryInfo retry = unpack(details, RetryInfo.class);
    this.retryDelay =
        retry == null
            ? null
            : Duration.ofSeconds(
                retry.getRetryDelay().getSeconds(), retry.getRetryDelay().getNanos());
  }

  /**
   * Builds a LivenessException from what a grpc-java call threw (a StatusRuntimeException or
   * StatusException, possibly wrapped). Anything else becomes code UNKNOWN without a reason.
   */
  public static LivenessException from(Throwable t) {
    if (t instanceof LivenessException e) {
      return e;
    }
    Status status = Status.fromThrowable(t);
    com.google.rpc.Status rich = StatusProto.fromThrowable(t);
    String description = status.getDescription() == null ? "" : status.getDescription();
    return new LivenessException(status.getCode(), description, rich, t);
  }

  private static <T extends com.google.protobuf.Message> T unpack(List<Any> details, Class<T> type) {
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
   * ErrorInfo.reason, e.g. "OUT_OF_QUOTA" (see {@link Reasons}); "" when the failure never
   * reached the gateway (e.g. a refused connection).
   */
  public String getReason() {
    return reason;
  }

  /** ErrorInfo.domain, "liveness.v1"; "" without an ErrorInfo. */
  public String getDomain() {
    return domain;
  }

  /** ErrorInfo.metadata: vendor, httpStatus and vendorRequestId where known. */
  public Map<String, String> getErrorMetadata() {
    return errorMetadata;
  }

  /** RetryInfo.retry_delay: empty when the failure is not a retryable rate limit. */
  public Optional<Duration> getRetryDelay() {
    return Optional.ofNullable(retryDelay);
  }

  /** Every detail of the google.rpc.Status (ErrorInfo, RetryInfo, QuotaFailure, BadRequest...). */
  public List<Any> getDetails() {
    return details;
  }
}
