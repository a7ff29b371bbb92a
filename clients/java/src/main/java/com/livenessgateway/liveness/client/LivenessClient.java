package com.livenessgateway.liveness.client;

import com.livenessgateway.liveness.v1.AntiHackRequest;
import com.livenessgateway.liveness.v1.AntiHackResponse;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;
import com.livenessgateway.liveness.v1.LivenessCheckGrpc;
import com.livenessgateway.liveness.v1.UploadRequest;
import com.livenessgateway.liveness.v1.UploadResponse;
import io.grpc.CallCredentials;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * A client of liveness.v1.LivenessCheck with the gateway's contract built in: the shipped
 * service config (retries only as the gateway's grpc-retry-pushback-ms allows, retry
 * throttling), a 20 s default deadline, 6 MiB messages, the request id on every result and
 * every {@link LivenessException}, and an idempotency key on every upload (see {@link
 * IdempotencyKeys}). Blocking ({@link #detect}) and future ({@link #detectAsync}) calls share
 * one channel; a client is thread-safe and meant to be shared.
 *
 * <pre>{@code
 * try (LivenessClient client = LivenessClient.newBuilder("gateway.internal:443")
 *     .tls()                                        // or .plaintext(), .mtls(ca, cert, key)
 *     .callCredentials(BearerToken.of(token))
 *     .build()) {
 *   LivenessResult<DetectResponse> result = client.detect(DetectRequest.newBuilder()
 *       .setLivenessData(ByteString.copyFrom(data)).build());
 *   System.out.println(result.response().getVerdict() + " " + result.requestId());
 * }
 * }</pre>
 */
public final class LivenessClient implements AutoCloseable {
  /** The largest gRPC message sent or received: 5 MiB of liveness data must not be refused. */
  public static final int MAX_MESSAGE_BYTES = 6 * 1024 * 1024;

  /**
   * The default deadline of every call: the gateway's worst case (the 10 s vendor timeout plus
   * the vendors' 5 s download limit for a url, with room to answer), as in the service config.
   */
  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(20);

  /** The trailing metadata key of the gateway's request id. */
  public static final Metadata.Key<String> REQUEST_ID_KEY =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);

  /**
   * A retried call's request is kept in memory until the call is over: allow the largest
   * message, so a 5 MiB request is resent after a CIRCUIT_OPEN or OVERLOADED as a small one is.
   * grpc-java's defaults (1 MiB per call, 16 MiB per channel) would quietly stop retrying it.
   */
  private static final long PER_RPC_RETRY_BUFFER_BYTES = MAX_MESSAGE_BYTES + 64 * 1024;

  private static final long RETRY_BUFFER_BYTES = 8 * PER_RPC_RETRY_BUFFER_BYTES;

  private final Channel channel;
  private final ManagedChannel ownedChannel;
  private final CallOptions callOptions;
  private final Duration timeout;

  private LivenessClient(
      Channel channel, ManagedChannel ownedChannel, CallOptions callOptions, Duration timeout) {
    this.channel = channel;
    this.ownedChannel = ownedChannel;
    this.callOptions = callOptions;
    this.timeout = timeout;
  }

  /** A builder for a client that creates (and closes) its own channel to target. */
  public static Builder newBuilder(String target) {
    return new Builder(target);
  }

  /** A client on its own channel to target with these credentials and every default. */
  public static LivenessClient create(String target, ChannelCredentials credentials) {
    return newBuilder(target).channelCredentials(credentials).build();
  }

  /**
   * A client on a channel the caller owns and closes. Build that channel with {@link
   * #configure} so it has the service config and the message limits.
   */
  public static LivenessClient forChannel(Channel channel) {
    return new LivenessClient(
        Objects.requireNonNull(channel, "channel"),
        null,
        CallOptions.DEFAULT.withMaxOutboundMessageSize(MAX_MESSAGE_BYTES),
        DEFAULT_DEADLINE);
  }

  /**
   * Applies what every channel to the gateway needs: the shipped service config as the default
   * (a service config from name resolution still wins), retries enabled, the 6 MiB inbound
   * limit and retry buffers that fit it.
   */
  public static ManagedChannelBuilder<?> configure(ManagedChannelBuilder<?> builder) {
    return builder
        .defaultServiceConfig(serviceConfig())
        .enableRetry()
        .maxInboundMessageSize(MAX_MESSAGE_BYTES)
        .perRpcBufferLimit(PER_RPC_RETRY_BUFFER_BYTES)
        .retryBufferSize(RETRY_BUFFER_BYTES);
  }

  /** The shipped service config (protos/liveness/v1/service_config.json) as grpc-java takes it. */
  public static Map<String, ?> serviceConfig() {
    return ServiceConfig.load();
  }

  /**
   * A view of this client (same channel) whose calls have this deadline from the moment of each
   * call instead of 20 s. The service config's 20 s timeout still bounds every call.
   */
  public LivenessClient withTimeout(Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("a timeout is positive: " + timeout);
    }
    return new LivenessClient(channel, null, callOptions, timeout);
  }

  /** A view of this client (same channel) whose calls carry these credentials. */
  public LivenessClient withCallCredentials(CallCredentials credentials) {
    return new LivenessClient(channel, null, callOptions.withCallCredentials(credentials), timeout);
  }

  /** The deadline given to each call from the moment it starts. */
  public Duration getTimeout() {
    return timeout;
  }

  /** The channel, for the generated stubs: {@code LivenessCheckGrpc.newStub(client.channel())}. */
  public Channel channel() {
    return channel;
  }

  /**
   * Stores liveness data at the vendor and returns its id for Detect. A request without a
   * request_id is sent with a fresh idempotency key, the same on every attempt; the result and
   * the exception give it back ({@code idempotencyKey()}, {@code getIdempotencyKey()}) for a
   * resend of the same upload.
   */
  public LivenessResult<UploadResponse> upload(UploadRequest request) {
    return await(uploadAsync(request));
  }

  /** Scores liveness data with LinkFace; sends an idempotency key only when request has one. */
  public LivenessResult<DetectResponse> detect(DetectRequest request) {
    return await(detectAsync(request));
  }

  /** Scores liveness data with AccuAuth; sends an idempotency key only when request has one. */
  public LivenessResult<AntiHackResponse> antiHack(AntiHackRequest request) {
    return await(antiHackAsync(request));
  }

  /**
   * Upload without blocking; the future fails with a LivenessException and cancelling it
   * cancels the call.
   */
  public CompletableFuture<LivenessResult<UploadResponse>> uploadAsync(UploadRequest request) {
    Objects.requireNonNull(request, "request");
    if (request.getRequestId().isEmpty()) {
      request = request.toBuilder().setRequestId(IdempotencyKeys.newKey()).build();
    }
    return start(LivenessCheckGrpc.getUploadMethod(), request, request.getRequestId());
  }

  /** Detect without blocking; see {@link #uploadAsync}. */
  public CompletableFuture<LivenessResult<DetectResponse>> detectAsync(DetectRequest request) {
    Objects.requireNonNull(request, "request");
    return start(LivenessCheckGrpc.getDetectMethod(), request, request.getRequestId());
  }

  /** AntiHack without blocking; see {@link #uploadAsync}. */
  public CompletableFuture<LivenessResult<AntiHackResponse>> antiHackAsync(
      AntiHackRequest request) {
    Objects.requireNonNull(request, "request");
    return start(LivenessCheckGrpc.getAntiHackMethod(), request, request.getRequestId());
  }

  /**
   * Starts a call; a malformed idempotency key fails the future at once with the gateway's
   * INVALID_REQUEST answer, and nothing is sent.
   */
  private <ReqT, RespT> CompletableFuture<LivenessResult<RespT>> start(
      MethodDescriptor<ReqT, RespT> method, ReqT request, String idempotencyKey) {
    if (!idempotencyKey.isEmpty() && !IdempotencyKeys.isValid(idempotencyKey)) {
      return CompletableFuture.failedFuture(IdempotencyKeys.invalid(idempotencyKey));
    }
    CallOptions options = callOptions.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
    return UnaryCall.start(channel, method, options, request, idempotencyKey);
  }

  private static <T> T await(CompletableFuture<T> future) {
    try {
      return future.get();
    } catch (ExecutionException e) {
      throw LivenessException.from(e.getCause());
    } catch (InterruptedException e) {
      future.cancel(true);
      Thread.currentThread().interrupt();
      throw LivenessException.from(
          Status.CANCELLED.withDescription("interrupted while waiting").withCause(e)
              .asRuntimeException());
    }
  }

  /** The request id from trailers, else headers; "" when neither has one. */
  static String requestId(Metadata headers, Metadata trailers) {
    String id = trailers == null ? null : trailers.get(REQUEST_ID_KEY);
    if (id == null && headers != null) {
      id = headers.get(REQUEST_ID_KEY);
    }
    return id == null ? "" : id;
  }

  /**
   * Shuts the channel down if this client created it, waiting at most 5 s for calls in flight.
   * Views made by withTimeout or withCallCredentials share the channel and close nothing.
   */
  @Override
  public void close() {
    if (ownedChannel == null) {
      return;
    }
    ownedChannel.shutdown();
    try {
      if (!ownedChannel.awaitTermination(5, TimeUnit.SECONDS)) {
        ownedChannel.shutdownNow();
      }
    } catch (InterruptedException e) {
      ownedChannel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  /** Options for a client's own channel. TLS with the system's trusted roots by default. */
  public static final class Builder {
    private final String target;
    private ChannelCredentials channelCredentials;
    private Path trustedCa;
    private Path clientCertChain;
    private Path clientKey;
    private boolean plaintext;
    private CallCredentials callCredentials;
    private Duration timeout = DEFAULT_DEADLINE;
    private final List<ClientInterceptor> interceptors = new ArrayList<>();

    private Builder(String target) {
      this.target = Objects.requireNonNull(target, "target");
    }

    /** No TLS: for a gateway on loopback or the sandbox (`make serve`). */
    public Builder plaintext() {
      reset();
      plaintext = true;
      return this;
    }

    /** TLS, trusting the system's roots (the default). */
    public Builder tls() {
      reset();
      return this;
    }

    /** TLS, trusting only the CA certificates in this PEM file. */
    public Builder tls(Path trustedCaPem) {
      reset();
      trustedCa = Objects.requireNonNull(trustedCaPem, "trustedCaPem");
      return this;
    }

    /**
     * mTLS: TLS trusting the CA in trustedCaPem (null: the system's roots), presenting this
     * client certificate chain and PEM private key (PKCS#8).
     */
    public Builder mtls(Path trustedCaPem, Path certChainPem, Path privateKeyPem) {
      reset();
      trustedCa = trustedCaPem;
      clientCertChain = Objects.requireNonNull(certChainPem, "certChainPem");
      clientKey = Objects.requireNonNull(privateKeyPem, "privateKeyPem");
      return this;
    }

    /** Any other grpc-java channel credentials (replaces plaintext/tls/mtls). */
    public Builder channelCredentials(ChannelCredentials credentials) {
      reset();
      channelCredentials = Objects.requireNonNull(credentials, "credentials");
      return this;
    }

    /** Credentials on every call, e.g. {@link BearerToken#of}. */
    public Builder callCredentials(CallCredentials credentials) {
      callCredentials = Objects.requireNonNull(credentials, "credentials");
      return this;
    }

    /** The deadline of each call, 20 s unless set (the service config caps it at 20 s). */
    public Builder timeout(Duration timeout) {
      if (timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("a timeout is positive: " + timeout);
      }
      this.timeout = timeout;
      return this;
    }

    /** Interceptors on the channel (tracing, logging...), run in grpc-java's order. */
    public Builder intercept(ClientInterceptor... interceptors) {
      this.interceptors.addAll(Arrays.asList(interceptors));
      return this;
    }

    private void reset() {
      channelCredentials = null;
      trustedCa = null;
      clientCertChain = null;
      clientKey = null;
      plaintext = false;
    }

    private ChannelCredentials credentials() throws IOException {
      if (channelCredentials != null) {
        return channelCredentials;
      }
      if (plaintext) {
        return InsecureChannelCredentials.create();
      }
      TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
      if (trustedCa != null) {
        tls.trustManager(trustedCa.toFile());
      }
      if (clientCertChain != null) {
        tls.keyManager(clientCertChain.toFile(), clientKey.toFile());
      }
      return tls.build();
    }

    /** Creates the channel; throws UncheckedIOException when a PEM file cannot be read. */
    public LivenessClient build() {
      ChannelCredentials credentials;
      try {
        credentials = credentials();
      } catch (IOException e) {
        throw new UncheckedIOException("reading the TLS files: " + e.getMessage(), e);
      }
      ManagedChannel channel =
          configure(Grpc.newChannelBuilder(target, credentials)).intercept(interceptors).build();
      CallOptions options = CallOptions.DEFAULT.withMaxOutboundMessageSize(MAX_MESSAGE_BYTES);
      if (callCredentials != null) {
        options = options.withCallCredentials(callCredentials);
      }
      return new LivenessClient(channel, channel, options, timeout);
    }
  }
}
