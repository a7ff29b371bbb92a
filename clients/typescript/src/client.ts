/**
 * LivenessClient: promise methods over the generated grpc-js client, with the shipped service
 * config (retries only as the gateway's grpc-retry-pushback-ms allows), a default deadline, an
 * AbortSignal per call, TLS/mTLS/bearer-token options, the request id on every result, and an
 * idempotency key (the request's requestId, AIP-155) on every upload.
 */
import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientUnaryCall,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
  type StatusObject,
  status as Code,
} from "@grpc/grpc-js";

import { LivenessError, requestIdOf } from "./errors";
import { invalidKeyError, isValidIdempotencyKey, newIdempotencyKey } from "./idempotency";
import {
  type AntiHackRequest,
  type AntiHackResponse,
  type DetectRequest,
  type DetectResponse,
  LivenessCheckClient,
  type UploadRequest,
  type UploadResponse,
} from "./gen/liveness/v1/liveness";
import serviceConfig from "./service_config.json";

/**
 * The service config every client of the gateway uses (protos/liveness/v1/service_config.json):
 * retries on UNAVAILABLE and RESOURCE_EXHAUSTED only as the gateway's pushback allows, at most
 * 3 attempts, retry throttling, a 20 s timeout.
 */
export const SERVICE_CONFIG: ServiceConfig = serviceConfig;

/** The parts of a gRPC service config (gRFC A2, A6) that SERVICE_CONFIG uses. */
export interface ServiceConfig {
  readonly methodConfig: readonly {
    readonly name: readonly { readonly service?: string; readonly method?: string }[];
    readonly timeout?: string;
    readonly waitForReady?: boolean;
    readonly retryPolicy?: {
      readonly maxAttempts: number;
      readonly initialBackoff: string;
      readonly maxBackoff: string;
      readonly backoffMultiplier: number;
      readonly retryableStatusCodes: readonly string[];
    };
  }[];
  readonly retryThrottling?: { readonly maxTokens: number; readonly tokenRatio: number };
}

/**
 * The deadline of a call that sets none: the gateway's worst case (the 10 s vendor timeout plus
 * the vendors' 5 s download limit for a url, with room to answer), as in SERVICE_CONFIG.
 */
export const DEFAULT_DEADLINE_MS = 20_000;

/** The largest gRPC message sent or received: 5 MiB of liveness data must never be refused. */
export const MAX_MESSAGE_BYTES = 6 * 1024 * 1024;

/**
 * Channel options every connection to the gateway needs; LivenessClient applies them. grpc-js
 * keeps a copy of each request for resending; its default (256 KiB a call) would make a large
 * payload unretryable even where the gateway advises a resend.
 */
export const CHANNEL_OPTIONS: Readonly<ChannelOptions> = {
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.service_config": JSON.stringify(serviceConfig),
  "grpc.enable_retries": 1,
  "grpc.per_rpc_retry_buffer_size": MAX_MESSAGE_BYTES,
};

/** TLS settings; `certChain` with `privateKey` is mTLS (a client certificate). PEM bytes. */
export interface TlsOptions {
  /** CA bundle the gateway's certificate must chain to; default: the system's roots. */
  rootCerts?: Buffer;
  /** The client certificate chain, for mTLS. */
  certChain?: Buffer;
  /** The client certificate's private key, for mTLS. */
  privateKey?: Buffer;
}

/** How LivenessClient connects. Without `credentials` or `tls` the channel is plaintext. */
export interface LivenessClientOptions {
  /** Channel credentials made with the application's own @grpc/grpc-js (e.g. createSsl). */
  credentials?: ChannelCredentials;
  /** TLS (true: the system's roots) or mTLS; not together with `credentials`. */
  tls?: true | TlsOptions;
  /** A bearer token (or a function returning one per call) sent as `authorization`; needs TLS. */
  token?: string | (() => string | Promise<string>);
  /** The deadline of calls that set none, in ms; default DEFAULT_DEADLINE_MS. */
  deadlineMs?: number;
  /** grpc-js channel options, applied over CHANNEL_OPTIONS. */
  channelOptions?: Partial<ChannelOptions>;
}

/** Per-call options. */
export interface CallParams {
  /** When the call must be over: a Date or ms since the epoch; default now + deadlineMs. */
  deadline?: Date | number;
  /** Aborting it cancels the call at the gateway, which stops its vendor call; the call rejects with CANCELLED. */
  signal?: AbortSignal;
  /** Request metadata. */
  metadata?: Metadata;
}

/**
 * A result with the gateway's x-request-id (`requestId`, for support cases and log correlation)
 * and the idempotency key the call sent (`idempotencyKey`: the request's requestId, always set
 * for an upload; "" when none was sent).
 */
export type Reply<T> = T & { readonly requestId: string; readonly idempotencyKey: string };

type Source<R extends { source?: unknown }> = NonNullable<R["source"]>;

/**
 * The idempotency key (AIP-155), a UUID in its canonical form; optional. Not the x-request-id:
 * the generated field has the contract's name, request_id.
 */
interface IdempotencyKey {
  requestId?: string;
}

/** An UploadRequest with exactly one source; without a requestId, a fresh one is sent. */
export type UploadParams = Omit<UploadRequest, "source" | "requestId"> & IdempotencyKey & { source: Source<UploadRequest> };
/** A DetectRequest with exactly one source; a requestId is sent only when set. */
export type DetectParams = Omit<DetectRequest, "source" | "requestId"> & IdempotencyKey & { source: Source<DetectRequest> };
/** An AntiHackRequest with exactly one source; the flags default to false; a requestId is sent only when set. */
export type AntiHackParams = Omit<AntiHackRequest, "source" | "returnImage" | "returnExtra" | "requestId"> &
  IdempotencyKey & {
    source: Source<AntiHackRequest>;
    returnImage?: boolean;
    returnExtra?: boolean;
  };

type Callback<R> = (err: ServiceError | null, reply?: R) => void;
type UnaryMethod<Q, R> = (q: Q, m: Metadata, o: Partial<CallOptions>, cb: Callback<R>) => ClientUnaryCall;

/** Calls liveness.v1.LivenessCheck; every method rejects with a LivenessError. */
export class LivenessClient {
  /** The generated grpc-js client on the same channel, for what this wrapper omits. */
  readonly stub: LivenessCheckClient;
  /** The deadline of calls that set none, in ms. */
  readonly deadlineMs: number;

  /**
   * @param target "host:port" or any gRPC target
   * @param options credentials or TLS/mTLS settings, a bearer token, the default deadline
   */
  constructor(target: string, options: LivenessClientOptions = {}) {
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const channelOptions = { ...CHANNEL_OPTIONS, ...options.channelOptions };
    this.stub = new LivenessCheckClient(target, channelCredentials(options), channelOptions);
  }

  /**
   * Stores liveness data at the vendor and returns its id for detect. Without a requestId the
   * call sends a fresh idempotency key, made once for this call and sent on every attempt; the
   * reply and the error give it back as `idempotencyKey`, for a resend of the same upload.
   */
  upload(request: UploadParams, params: CallParams = {}): Promise<Reply<UploadResponse>> {
    const full: UploadRequest = { ...request, requestId: request.requestId || newIdempotencyKey() };
    return this.unary(this.stub.upload, full, params);
  }

  /** Scores liveness data with LinkFace; sends an idempotency key only when requestId is set. */
  detect(request: DetectParams, params: CallParams = {}): Promise<Reply<DetectResponse>> {
    const full: DetectRequest = { ...request, requestId: request.requestId ?? "" };
    return this.unary(this.stub.detect, full, params);
  }

  /** Scores liveness data with AccuAuth; sends an idempotency key only when requestId is set. */
  antiHack(request: AntiHackParams, params: CallParams = {}): Promise<Reply<AntiHackResponse>> {
    const full: AntiHackRequest = { returnImage: false, returnExtra: false, ...request, requestId: request.requestId ?? "" };
    return this.unary(this.stub.antiHack, full, params);
  }

  /** Closes the channel. */
  close(): void {
    this.stub.close();
  }

  private unary<Q extends { requestId: string }, R extends object>(
    method: UnaryMethod<Q, R>,
    request: Q,
    params: CallParams,
  ): Promise<Reply<R>> {
    const { signal } = params;
    const key = request.requestId;
    if (key !== "" && !isValidIdempotencyKey(key)) {
      return Promise.reject(invalidKeyError(key));
    }
    if (signal?.aborted) {
      return Promise.reject(new LivenessError(Code.CANCELLED, "aborted before the call", [], "", signal.reason, key));
    }
    const deadline = params.deadline ?? Date.now() + this.deadlineMs;
    return new Promise((resolve, reject) => {
      let failure: ServiceError | null = null;
      let reply: R | undefined;
      // grpc-js calls the callback, then emits "status" with the trailers (and x-request-id).
      const call = method.call(this.stub, request, params.metadata ?? new Metadata(), { deadline }, (err, r) => {
        failure = err;
        reply = r;
      });
      const abort = () => call.cancel(); // RST_STREAM: the gateway cancels its handler and vendor call
      signal?.addEventListener("abort", abort, { once: true });
      call.on("status", (status: StatusObject) => {
        signal?.removeEventListener("abort", abort);
        if (failure !== null || reply === undefined) {
          reject(LivenessError.from(failure ?? { ...status, message: status.details }, key));
        } else {
          resolve(Object.assign(reply, { requestId: requestIdOf(status.metadata), idempotencyKey: key }));
        }
      });
    });
  }
}

function channelCredentials(options: LivenessClientOptions): ChannelCredentials {
  if (options.credentials && options.tls) {
    throw new TypeError("LivenessClient: give either credentials or tls, not both");
  }
  let creds: ChannelCredentials;
  if (options.credentials) {
    creds = options.credentials;
  } else if (options.tls) {
    const tls = options.tls === true ? {} : options.tls;
    if (Boolean(tls.certChain) !== Boolean(tls.privateKey)) {
      throw new TypeError("LivenessClient: mTLS needs both tls.certChain and tls.privateKey");
    }
    creds = grpcCredentials.createSsl(tls.rootCerts ?? null, tls.privateKey ?? null, tls.certChain ?? null);
  } else {
    creds = grpcCredentials.createInsecure();
  }
  const { token } = options;
  if (token === undefined) return creds;
  if (!creds._isSecure()) {
    throw new TypeError("LivenessClient: a bearer token needs TLS (tls or secure credentials)");
  }
  const bearer = grpcCredentials.createFromMetadataGenerator((_params, callback) => {
    Promise.resolve(typeof token === "function" ? token() : token).then(
      (value) => {
        const metadata = new Metadata();
        metadata.set("authorization", `Bearer ${value}`);
        callback(null, metadata);
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  });
  return grpcCredentials.combineChannelCredentials(creds, bearer);
}
