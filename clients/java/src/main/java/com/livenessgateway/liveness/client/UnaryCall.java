package com.livenessgateway.liveness.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.concurrent.CompletableFuture;

/**
 * One unary call as a CompletableFuture that also sees the trailing metadata (for the request
 * id), which the generated stubs hide. Cancelling the future cancels the call. Retries, as the
 * service config allows them, happen below, in the channel: this is one call, however many
 * attempts it takes.
 */
final class UnaryCall<ReqT, RespT> extends CompletableFuture<LivenessResult<RespT>> {
  private final ClientCall<ReqT, RespT> call;
  private final String idempotencyKey;

  private UnaryCall(ClientCall<ReqT, RespT> call, String idempotencyKey) {
    this.call = call;
    this.idempotencyKey = idempotencyKey;
  }

  /** Starts the call; idempotencyKey is the request's request_id ("" for none), for the result. */
  static <ReqT, RespT> UnaryCall<ReqT, RespT> start(
      Channel channel,
      MethodDescriptor<ReqT, RespT> method,
      CallOptions options,
      ReqT request,
      String idempotencyKey) {
    UnaryCall<ReqT, RespT> future =
        new UnaryCall<>(channel.newCall(method, options), idempotencyKey);
    try {
      future.call.start(future.new Listener(), new Metadata());
      // Two, as grpc-java's own ClientCalls asks, so a second message is seen as the error it is.
      future.call.request(2);
      future.call.sendMessage(request);
      future.call.halfClose();
    } catch (RuntimeException | Error e) {
      future.call.cancel("the call could not be started", e);
      throw e;
    }
    return future;
  }

  @Override
  public boolean cancel(boolean mayInterruptIfRunning) {
    boolean cancelled = super.cancel(mayInterruptIfRunning);
    if (cancelled) {
      call.cancel("cancelled by the caller", null);
    }
    return cancelled;
  }

  private final class Listener extends ClientCall.Listener<RespT> {
    private Metadata headers = new Metadata();
    private RespT response;

    @Override
    public void onHeaders(Metadata headers) {
      this.headers = headers;
    }

    @Override
    public void onMessage(RespT message) {
      if (response != null) {
        call.cancel("more than one response to a unary call", null);
        return;
      }
      response = message;
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      String requestId = LivenessClient.requestId(headers, trailers);
      if (status.isOk() && response != null) {
        complete(new LivenessResult<>(response, requestId, idempotencyKey));
        return;
      }
      Status failed =
          status.isOk()
              ? Status.INTERNAL.withDescription("the gateway closed a unary call without a response")
              : status;
      completeExceptionally(LivenessException.from(failed, trailers, requestId, idempotencyKey));
    }
  }
}
