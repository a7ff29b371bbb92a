package com.livenessgateway.liveness.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.livenessgateway.liveness.v1.DetectRequest;
import com.livenessgateway.liveness.v1.ErrorReason;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Deadline;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Deadlines and cancellation against a loopback socket that accepts and never answers (no
 * gateway needed): what the client does on its own when the other side is silent.
 */
class SilentServerTest {
  private ServerSocket server;
  private final List<Socket> accepted = new ArrayList<>();
  private Thread acceptor;
  private LivenessClient client;

  @BeforeEach
  void listen() throws IOException {
    server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    acceptor =
        new Thread(
            () -> {
              try {
                while (!server.isClosed()) {
                  Socket s = server.accept();
                  synchronized (accepted) {
                    accepted.add(s);
                  }
                }
              } catch (IOException closed) {
                // the test is over
              }
            });
    acceptor.setDaemon(true);
    acceptor.start();
    client =
        LivenessClient.newBuilder("127.0.0.1:" + server.getLocalPort())
            .plaintext()
            .intercept(calls)
            .build();
  }

  /** What the channel saw of each call: its options when made, its status when closed. */
  private final Calls calls = new Calls();

  static final class Calls implements ClientInterceptor {
    final CompletableFuture<CallOptions> options = new CompletableFuture<>();
    final CompletableFuture<Status> closed = new CompletableFuture<>();

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions callOptions, Channel next) {
      options.complete(callOptions);
      return new ForwardingClientCall.SimpleForwardingClientCall<>(
          next.newCall(method, callOptions)) {
        @Override
        public void start(Listener<RespT> listener, Metadata headers) {
          super.start(
              new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
                @Override
                public void onClose(Status status, Metadata trailers) {
                  closed.complete(status);
                  super.onClose(status, trailers);
                }
              },
              headers);
        }
      };
    }
  }

  @AfterEach
  void stop() throws IOException, InterruptedException {
    client.close();
    server.close();
    synchronized (accepted) {
      for (Socket s : accepted) {
        s.close();
      }
    }
    acceptor.join(5_000);
  }

  private static DetectRequest request() {
    return DetectRequest.newBuilder()
        .setLivenessData(ByteString.copyFromUtf8("SANDBOX:score=0.5"))
        .build();
  }

  @Test
  void everyCallHasTheTwentySecondDefaultDeadline() throws Exception {
    assertEquals(Duration.ofSeconds(20), client.getTimeout());
    CompletableFuture<?> future = client.detectAsync(request());
    Deadline deadline = calls.options.get(5, TimeUnit.SECONDS).getDeadline();
    future.cancel(true);
    assertNotNull(deadline, "a call without a deadline");
    long remainingMs = deadline.timeRemaining(TimeUnit.MILLISECONDS);
    assertTrue(remainingMs > 15_000 && remainingMs <= 20_000, remainingMs + " ms left");
  }

  @Test
  void aBlockingCallEndsAtItsDeadline() {
    long start = System.nanoTime();
    LivenessException e =
        assertThrows(
            LivenessException.class,
            () -> client.withTimeout(Duration.ofMillis(300)).detect(request()));
    long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getCode(), e.toString());
    assertEquals(ErrorReason.ERROR_REASON_UNSPECIFIED, e.getReason());
    assertEquals("", e.getRequestId());
    assertTrue(elapsedMs >= 250 && elapsedMs < 5_000, "elapsed " + elapsedMs + " ms");
  }

  @Test
  void aFutureFailsWithALivenessExceptionAtItsDeadline() {
    CompletableFuture<?> future = client.withTimeout(Duration.ofMillis(300)).detectAsync(request());
    ExecutionException e =
        assertThrows(ExecutionException.class, () -> future.get(10, TimeUnit.SECONDS));
    LivenessException cause = assertInstanceOf(LivenessException.class, e.getCause());
    assertEquals(Status.Code.DEADLINE_EXCEEDED, cause.getCode());
  }

  @Test
  void cancellingAFutureCancelsItsCall() throws Exception {
    CompletableFuture<?> future = client.detectAsync(request());
    Thread.sleep(100);
    assertTrue(future.cancel(true));
    assertThrows(CancellationException.class, () -> future.get(1, TimeUnit.SECONDS));
    assertEquals(Status.Code.CANCELLED, calls.closed.get(5, TimeUnit.SECONDS).getCode());
  }

  @Test
  void anInterruptedBlockingCallIsCancelled() throws Exception {
    CompletableFuture<Throwable> thrown = new CompletableFuture<>();
    Thread caller =
        new Thread(
            () -> {
              try {
                client.detect(request());
                thrown.complete(null);
              } catch (Throwable t) {
                thrown.complete(t);
              }
            });
    caller.start();
    Thread.sleep(200);
    caller.interrupt();
    LivenessException e = assertInstanceOf(LivenessException.class, thrown.get(5, TimeUnit.SECONDS));
    assertEquals(Status.Code.CANCELLED, e.getCode());
    assertEquals(Status.Code.CANCELLED, calls.closed.get(5, TimeUnit.SECONDS).getCode());
    caller.join(5_000);
  }
}
