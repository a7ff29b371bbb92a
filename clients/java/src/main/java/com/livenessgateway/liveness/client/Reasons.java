package com.livenessgateway.liveness.client;

/**
 * ErrorInfo reasons callers commonly branch on. The full list, with the gRPC code of each, is
 * the error table in the gateway's README; a vendor may add reasons not listed here.
 */
public final class Reasons {
  /** The ErrorInfo domain of every error the gateway produces. */
  public static final String DOMAIN = "liveness.v1";

  public static final String INVALID_REQUEST = "INVALID_REQUEST";
  public static final String RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED";
  public static final String OUT_OF_QUOTA = "OUT_OF_QUOTA";
  public static final String VENDOR_UNREACHABLE = "VENDOR_UNREACHABLE";
  public static final String VENDOR_TIMEOUT = "VENDOR_TIMEOUT";
  public static final String VENDOR_BAD_REPLY = "VENDOR_BAD_REPLY";
  public static final String VENDOR_HTTP_ERROR = "VENDOR_HTTP_ERROR";
  public static final String DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED";
  public static final String GATEWAY_INTERNAL = "GATEWAY_INTERNAL";

  private Reasons() {}
}
