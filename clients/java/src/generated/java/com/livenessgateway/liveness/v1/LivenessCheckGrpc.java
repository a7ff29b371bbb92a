package com.livenessgateway.liveness.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * LivenessCheck scores liveness data with the configured vendors.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class LivenessCheckGrpc {

  private LivenessCheckGrpc() {}

  public static final java.lang.String SERVICE_NAME = "liveness.v1.LivenessCheck";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.UploadRequest,
      com.livenessgateway.liveness.v1.UploadResponse> getUploadMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Upload",
      requestType = com.livenessgateway.liveness.v1.UploadRequest.class,
      responseType = com.livenessgateway.liveness.v1.UploadResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.UploadRequest,
      com.livenessgateway.liveness.v1.UploadResponse> getUploadMethod() {
    io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.UploadRequest, com.livenessgateway.liveness.v1.UploadResponse> getUploadMethod;
    if ((getUploadMethod = LivenessCheckGrpc.getUploadMethod) == null) {
      synchronized (LivenessCheckGrpc.class) {
        if ((getUploadMethod = LivenessCheckGrpc.getUploadMethod) == null) {
          LivenessCheckGrpc.getUploadMethod = getUploadMethod =
              io.grpc.MethodDescriptor.<com.livenessgateway.liveness.v1.UploadRequest, com.livenessgateway.liveness.v1.UploadResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Upload"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.livenessgateway.liveness.v1.UploadRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.livenessgateway.liveness.v1.UploadResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LivenessCheckMethodDescriptorSupplier("Upload"))
              .build();
        }
      }
    }
    return getUploadMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.DetectRequest,
      com.livenessgateway.liveness.v1.DetectResponse> getDetectMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Detect",
      requestType = com.livenessgateway.liveness.v1.DetectRequest.class,
      responseType = com.livenessgateway.liveness.v1.DetectResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.DetectRequest,
      com.livenessgateway.liveness.v1.DetectResponse> getDetectMethod() {
    io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.DetectRequest, com.livenessgateway.liveness.v1.DetectResponse> getDetectMethod;
    if ((getDetectMethod = LivenessCheckGrpc.getDetectMethod) == null) {
      synchronized (LivenessCheckGrpc.class) {
        if ((getDetectMethod = LivenessCheckGrpc.getDetectMethod) == null) {
          LivenessCheckGrpc.getDetectMethod = getDetectMethod =
              io.grpc.MethodDescriptor.<com.livenessgateway.liveness.v1.DetectRequest, com.livenessgateway.liveness.v1.DetectResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Detect"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.livenessgateway.liveness.v1.DetectRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.livenessgateway.liveness.v1.DetectResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LivenessCheckMethodDescriptorSupplier("Detect"))
              .build();
        }
      }
    }
    return getDetectMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.AntiHackRequest,
      com.livenessgateway.liveness.v1.AntiHackResponse> getAntiHackMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "AntiHack",
      requestType = com.livenessgateway.liveness.v1.AntiHackRequest.class,
      responseType = com.livenessgateway.liveness.v1.AntiHackResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.AntiHackRequest,
      com.livenessgateway.liveness.v1.AntiHackResponse> getAntiHackMethod() {
    io.grpc.MethodDescriptor<com.livenessgateway.liveness.v1.AntiHackRequest, com.livenessgateway.liveness.v1.AntiHackResponse> getAntiHackMethod;
    if ((getAntiHackMethod = LivenessCheckGrpc.getAntiHackMethod) == null) {
      synchronized (LivenessCheckGrpc.class) {
        if ((getAntiHackMethod = LivenessCheckGrpc.getAntiHackMethod) == null) {
          LivenessCheckGrpc.getAntiHackMethod = getAntiHackMethod =
              io.grpc.MethodDescriptor.<com.livenessgateway.liveness.v1.AntiHackRequest, com.livenessgateway.liveness.v1.AntiHackResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "AntiHack"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.livenessgateway.liveness.v1.AntiHackRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.livenessgateway.liveness.v1.AntiHackResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LivenessCheckMethodDescriptorSupplier("AntiHack"))
              .build();
        }
      }
    }
    return getAntiHackMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static LivenessCheckStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LivenessCheckStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LivenessCheckStub>() {
        @java.lang.Override
        public LivenessCheckStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LivenessCheckStub(channel, callOptions);
        }
      };
    return LivenessCheckStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static LivenessCheckBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LivenessCheckBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LivenessCheckBlockingV2Stub>() {
        @java.lang.Override
        public LivenessCheckBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LivenessCheckBlockingV2Stub(channel, callOptions);
        }
      };
    return LivenessCheckBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static LivenessCheckBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LivenessCheckBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LivenessCheckBlockingStub>() {
        @java.lang.Override
        public LivenessCheckBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LivenessCheckBlockingStub(channel, callOptions);
        }
      };
    return LivenessCheckBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static LivenessCheckFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LivenessCheckFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LivenessCheckFutureStub>() {
        @java.lang.Override
        public LivenessCheckFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LivenessCheckFutureStub(channel, callOptions);
        }
      };
    return LivenessCheckFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * LivenessCheck scores liveness data with the configured vendors.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Upload stores liveness data at LinkFace (upload_liveness_data) and returns its id, which
     * Detect accepts later. Not idempotent: every call creates a new stored object.
     * </pre>
     */
    default void upload(com.livenessgateway.liveness.v1.UploadRequest request,
        io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.UploadResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUploadMethod(), responseObserver);
    }

    /**
     * <pre>
     * Detect asks LinkFace (liveness_hack_detect) whether the liveness data shows a live person.
     * </pre>
     */
    default void detect(com.livenessgateway.liveness.v1.DetectRequest request,
        io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.DetectResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDetectMethod(), responseObserver);
    }

    /**
     * <pre>
     * AntiHack asks AccuAuth (liveness_anti_hack) whether the liveness data shows a live person,
     * optionally with the face image and quality signals.
     * </pre>
     */
    default void antiHack(com.livenessgateway.liveness.v1.AntiHackRequest request,
        io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.AntiHackResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getAntiHackMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service LivenessCheck.
   * <pre>
   * LivenessCheck scores liveness data with the configured vendors.
   * </pre>
   */
  public static abstract class LivenessCheckImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return LivenessCheckGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service LivenessCheck.
   * <pre>
   * LivenessCheck scores liveness data with the configured vendors.
   * </pre>
   */
  public static final class LivenessCheckStub
      extends io.grpc.stub.AbstractAsyncStub<LivenessCheckStub> {
    private LivenessCheckStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LivenessCheckStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LivenessCheckStub(channel, callOptions);
    }

    /**
     * <pre>
     * Upload stores liveness data at LinkFace (upload_liveness_data) and returns its id, which
     * Detect accepts later. Not idempotent: every call creates a new stored object.
     * </pre>
     */
    public void upload(com.livenessgateway.liveness.v1.UploadRequest request,
        io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.UploadResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUploadMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Detect asks LinkFace (liveness_hack_detect) whether the liveness data shows a live person.
     * </pre>
     */
    public void detect(com.livenessgateway.liveness.v1.DetectRequest request,
        io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.DetectResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDetectMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * AntiHack asks AccuAuth (liveness_anti_hack) whether the liveness data shows a live person,
     * optionally with the face image and quality signals.
     * </pre>
     */
    public void antiHack(com.livenessgateway.liveness.v1.AntiHackRequest request,
        io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.AntiHackResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getAntiHackMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service LivenessCheck.
   * <pre>
   * LivenessCheck scores liveness data with the configured vendors.
   * </pre>
   */
  public static final class LivenessCheckBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<LivenessCheckBlockingV2Stub> {
    private LivenessCheckBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LivenessCheckBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LivenessCheckBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Upload stores liveness data at LinkFace (upload_liveness_data) and returns its id, which
     * Detect accepts later. Not idempotent: every call creates a new stored object.
     * </pre>
     */
    public com.livenessgateway.liveness.v1.UploadResponse upload(com.livenessgateway.liveness.v1.UploadRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getUploadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Detect asks LinkFace (liveness_hack_detect) whether the liveness data shows a live person.
     * </pre>
     */
    public com.livenessgateway.liveness.v1.DetectResponse detect(com.livenessgateway.liveness.v1.DetectRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDetectMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * AntiHack asks AccuAuth (liveness_anti_hack) whether the liveness data shows a live person,
     * optionally with the face image and quality signals.
     * </pre>
     */
    public com.livenessgateway.liveness.v1.AntiHackResponse antiHack(com.livenessgateway.liveness.v1.AntiHackRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getAntiHackMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service LivenessCheck.
   * <pre>
   * LivenessCheck scores liveness data with the configured vendors.
   * </pre>
   */
  public static final class LivenessCheckBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<LivenessCheckBlockingStub> {
    private LivenessCheckBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LivenessCheckBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LivenessCheckBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Upload stores liveness data at LinkFace (upload_liveness_data) and returns its id, which
     * Detect accepts later. Not idempotent: every call creates a new stored object.
     * </pre>
     */
    public com.livenessgateway.liveness.v1.UploadResponse upload(com.livenessgateway.liveness.v1.UploadRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUploadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Detect asks LinkFace (liveness_hack_detect) whether the liveness data shows a live person.
     * </pre>
     */
    public com.livenessgateway.liveness.v1.DetectResponse detect(com.livenessgateway.liveness.v1.DetectRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDetectMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * AntiHack asks AccuAuth (liveness_anti_hack) whether the liveness data shows a live person,
     * optionally with the face image and quality signals.
     * </pre>
     */
    public com.livenessgateway.liveness.v1.AntiHackResponse antiHack(com.livenessgateway.liveness.v1.AntiHackRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getAntiHackMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service LivenessCheck.
   * <pre>
   * LivenessCheck scores liveness data with the configured vendors.
   * </pre>
   */
  public static final class LivenessCheckFutureStub
      extends io.grpc.stub.AbstractFutureStub<LivenessCheckFutureStub> {
    private LivenessCheckFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LivenessCheckFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LivenessCheckFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Upload stores liveness data at LinkFace (upload_liveness_data) and returns its id, which
     * Detect accepts later. Not idempotent: every call creates a new stored object.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.livenessgateway.liveness.v1.UploadResponse> upload(
        com.livenessgateway.liveness.v1.UploadRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUploadMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Detect asks LinkFace (liveness_hack_detect) whether the liveness data shows a live person.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.livenessgateway.liveness.v1.DetectResponse> detect(
        com.livenessgateway.liveness.v1.DetectRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDetectMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * AntiHack asks AccuAuth (liveness_anti_hack) whether the liveness data shows a live person,
     * optionally with the face image and quality signals.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.livenessgateway.liveness.v1.AntiHackResponse> antiHack(
        com.livenessgateway.liveness.v1.AntiHackRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getAntiHackMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_UPLOAD = 0;
  private static final int METHODID_DETECT = 1;
  private static final int METHODID_ANTI_HACK = 2;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_UPLOAD:
          serviceImpl.upload((com.livenessgateway.liveness.v1.UploadRequest) request,
              (io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.UploadResponse>) responseObserver);
          break;
        case METHODID_DETECT:
          serviceImpl.detect((com.livenessgateway.liveness.v1.DetectRequest) request,
              (io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.DetectResponse>) responseObserver);
          break;
        case METHODID_ANTI_HACK:
          serviceImpl.antiHack((com.livenessgateway.liveness.v1.AntiHackRequest) request,
              (io.grpc.stub.StreamObserver<com.livenessgateway.liveness.v1.AntiHackResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getUploadMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.livenessgateway.liveness.v1.UploadRequest,
              com.livenessgateway.liveness.v1.UploadResponse>(
                service, METHODID_UPLOAD)))
        .addMethod(
          getDetectMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.livenessgateway.liveness.v1.DetectRequest,
              com.livenessgateway.liveness.v1.DetectResponse>(
                service, METHODID_DETECT)))
        .addMethod(
          getAntiHackMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.livenessgateway.liveness.v1.AntiHackRequest,
              com.livenessgateway.liveness.v1.AntiHackResponse>(
                service, METHODID_ANTI_HACK)))
        .build();
  }

  private static abstract class LivenessCheckBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    LivenessCheckBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return com.livenessgateway.liveness.v1.LivenessProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("LivenessCheck");
    }
  }

  private static final class LivenessCheckFileDescriptorSupplier
      extends LivenessCheckBaseDescriptorSupplier {
    LivenessCheckFileDescriptorSupplier() {}
  }

  private static final class LivenessCheckMethodDescriptorSupplier
      extends LivenessCheckBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    LivenessCheckMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (LivenessCheckGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new LivenessCheckFileDescriptorSupplier())
              .addMethod(getUploadMethod())
              .addMethod(getDetectMethod())
              .addMethod(getAntiHackMethod())
              .build();
        }
      }
    }
    return result;
  }
}
