package com.livenessgateway.liveness.client;

import com.livenessgateway.liveness.v1.AntiHackRequest;
import com.livenessgateway.liveness.v1.AntiHackResponse;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.DetectResponse;
import com.livenessgateway.liveness.v1.LivenessCheckGrpc;
import com.livenessgateway.liveness.v1.UploadRequest;
import com.livenessgateway.liveness.v1.UploadResponse;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * A thin wrapper around the generated blocking stub: the message size limits a 5 MiB payload
 * needs, and a {@link LivenessException} carrying the gateway's ErrorInfo reason and RetryInfo
 * delay for every failure.
 *
 * <pre>{@code
 * try (LivenessClient client = LivenessClient.create("localhost:50051",
 *     InsecureChannelCredentials.create())) {
 *   DetectResponse reply = client.withTimeout(Duration.ofSeconds(10)).detect(
 *       DetectRequest.newBuilder().setLivenessData(ByteString.copyFrom(data)).build());
 * }
 * }</pre>
 */
public final class LivenessClient implements AutoCloseable {
  /** The largest gRPC message sent or received: 5 MiB of liveness data must not be refused. */
  public static final int MAX_MESSAGE_BYTES = 6 * 1024 * 1024;

  private final ManagedChannel channel;
  private final boolean ownsChannel;
  private final LivenessCheckGrpc.LivenessCheckBlockingStub stub;

  private LivenessClient(
      ManagedChannel channel, boolean ownsChannel, LivenessCheckGrpc.LivenessCheckBlockingStub stub) {
    this.channel = channel;
    this.ownsChannel = ownsChannel;
    this.stub = stub;
  }

  /** Connects to target ("host:port" or any gRPC target); close() shuts the channel down. */
  public static LivenessClient create(String target, ChannelCredentials credentials) {
    ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(target, credentials);
    configure(builder);
    return new LivenessClient(builder.build(), true);
  }

  /** Uses a channel the caller owns and closes; configure its builder with {@link #configure}. */
  public LivenessClient(ManagedChannel channel) {
    this(channel, false);
  }

  private LivenessClient(ManagedChannel channel, boolean ownsChannel) {
    this(
        channel,
        ownsChannel,
        LivenessCheckGrpc.newBlockingStub(channel)
            .withMaxInboundMessageSize(MAX_MESSAGE_BYTES)
            .withMaxOutboundMessageSize(MAX_MESSAGE_BYTES));
  }

  /** Applies the channel options every connection to the gateway needs (message sizes). */
  public static ManagedChannelBuilder<?> configure(ManagedChannelBuilder<?> builder) {
    // The outbound limit is a call option, which the stub sets.
    return builder.maxInboundMessageSize(MAX_MESSAGE_BYTES);
  }

  /** A view of this client whose calls have the given deadline from the moment of the call. */
  public LivenessClient withTimeout(Duration timeout) {
    return new LivenessClient(
        channel, false, stub.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS));
  }

  /** The generated blocking stub on the same channel, for options this wrapper omits. */
  public LivenessCheckGrpc.LivenessCheckBlockingStub stub() {
    return stub;
  }

  /** Stores liveness data at the vendor and returns its id for Detect. */
  public UploadResponse upload(UploadRequest request) {
    return call(() -> stub.upload(request));
  }

  /** Scores liveness data with LinkFace. */
  public DetectResponse detect(DetectRequest request) {
    return call(() -> stub.detect(request));
  }

  /** Scores liveness data with AccuAuth. */
  public AntiHackResponse antiHack(AntiHackRequest request) {
    return call(() -> stub.antiHack(request));
  }

  private static <R> R call(Supplier<R> rpc) {
    try {
      return rpc.get();
    } catch (StatusRuntimeException e) {
      throw LivenessException.from(e);
    }
  }

  /** Shuts the channel down if this client created it (bounded wait of 5 s). */
  @Override
  public void close() {
    if (!ownsChannel) {
      return;
    }
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
