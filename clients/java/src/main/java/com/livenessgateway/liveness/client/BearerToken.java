package com.livenessgateway.liveness.client;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.util.Objects;
import java.util.concurrent.Executor;

/**
 * Call credentials sending {@code authorization: Bearer <token>}, the token of a caller in the
 * gateway's callers file. Refused on a connection without TLS (the token would travel in the
 * clear) unless made with {@link #allowingPlaintext}, for a gateway on loopback.
 */
public final class BearerToken extends CallCredentials {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final String token;
  private final boolean allowPlaintext;

  private BearerToken(String token, boolean allowPlaintext) {
    Objects.requireNonNull(token, "token");
    if (token.isEmpty() || !token.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
      throw new IllegalArgumentException("a bearer token is printable ASCII without spaces");
    }
    this.token = token;
    this.allowPlaintext = allowPlaintext;
  }

  /** The token, sent only over TLS. */
  public static BearerToken of(String token) {
    return new BearerToken(token, false);
  }

  /** The token, sent over plaintext too: only for a gateway on loopback or in tests. */
  public static BearerToken allowingPlaintext(String token) {
    return new BearerToken(token, true);
  }

  @Override
  public void applyRequestMetadata(
      RequestInfo requestInfo, Executor appExecutor, MetadataApplier applier) {
    if (!allowPlaintext && requestInfo.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY) {
      applier.fail(
          Status.UNAUTHENTICATED.withDescription(
              "bearer token not sent over a connection without TLS "
                  + "(BearerToken.allowingPlaintext sends it anyway)"));
      return;
    }
    Metadata headers = new Metadata();
    headers.put(AUTHORIZATION, "Bearer " + token);
    applier.apply(headers);
  }

  @Override
  public String toString() {
    return "BearerToken[" + (allowPlaintext ? "plaintext allowed" : "TLS only") + "]";
  }
}
