/**
 * A thin wrapper around the generated liveness.v1 client (ts-proto, @grpc/grpc-js): promise
 * methods, the message size limits a 5 MiB payload needs, and a LivenessError that carries the
 * gateway's google.rpc.ErrorInfo reason and metadata and its RetryInfo delay.
 *
 *   const client = new LivenessClient("localhost:50051", credentials.createInsecure());
 *   try {
 *     const reply = await client.detect({ livenessData: data });
 *   } catch (err) {
 *     if (err instanceof LivenessError && err.reason === Reason.RATE_LIMIT_EXCEEDED) { ... }
 *   }
 */
import {
  type CallOptions,
  type ChannelCredentials,
  type ClientOptions,
  Metadata,
  type ServiceError,
  status as Code,
} from "@grpc/grpc-js";

import { Any } from "./gen/google/protobuf/any";
import { ErrorInfo, RetryInfo } from "./gen/google/rpc/error_details";
import { Status } from "./gen/google/rpc/status";
import {
  type AntiHackRequest,
  type AntiHackResponse,
  type DetectRequest,
  type DetectResponse,
  LivenessCheckClient,
  type UploadRequest,
  type UploadResponse,
} from "./gen/liveness/v1/liveness";

export * from "./gen/liveness/v1/liveness";
export { ErrorInfo, RetryInfo, QuotaFailure, BadRequest } from "./gen/google/rpc/error_details";
export { Status } from "./gen/google/rpc/status";
export { Code };

/** The largest gRPC message sent or received: 5 MiB of liveness data must never be refused. */
export const MAX_MESSAGE_BYTES = 6 * 1024 * 1024;

/** Channel options every connection to the gateway needs; LivenessClient applies them. */
export const CHANNEL_OPTIONS: Partial<ClientOptions> = {
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
};

/** The ErrorInfo domain of every error the gateway produces. */
export const DOMAIN = "liveness.v1";

/**
 * ErrorInfo reasons callers commonly branch on. The full list, with the gRPC code of each, is
 * the error table in the gateway's README; a vendor may add reasons not listed here.
 */
export const Reason = {
  INVALID_REQUEST: "INVALID_REQUEST",
  RATE_LIMIT_EXCEEDED: "RATE_LIMIT_EXCEEDED",
  OUT_OF_QUOTA: "OUT_OF_QUOTA",
  VENDOR_UNREACHABLE: "VENDOR_UNREACHABLE",
  VENDOR_TIMEOUT: "VENDOR_TIMEOUT",
  VENDOR_BAD_REPLY: "VENDOR_BAD_REPLY",
  VENDOR_HTTP_ERROR: "VENDOR_HTTP_ERROR",
  DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
  GATEWAY_INTERNAL: "GATEWAY_INTERNAL",
} as const;

const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const TYPE_PREFIX = "type.googleapis.com/";

/**
 * A failed call with the rich error details unpacked. `reason` is "" for failures that never
 * reached the gateway (e.g. a refused connection); `retryDelayMs` is undefined without a
 * google.rpc.RetryInfo (the failure is not a retryable rate limit).
 */
export class LivenessError extends Error {
  /** The gRPC status code (grpc-js `status` enum, re-exported as `Code`). */
  readonly code: Code;
  /** The status message, without the code. */
  readonly details: string;
  /** ErrorInfo.reason, e.g. "OUT_OF_QUOTA". */
  readonly reason: string;
  /** ErrorInfo.domain, "liveness.v1". */
  readonly domain: string;
  /** ErrorInfo.metadata: vendor, httpStatus, vendorRequestId where known. */
  readonly errorMetadata: Readonly<Record<string, string>>;
  /** RetryInfo.retry_delay in milliseconds: wait this long before retrying. */
  readonly retryDelayMs: number | undefined;
  /** Every detail of the google.rpc.Status (ErrorInfo, RetryInfo, QuotaFailure, BadRequest...). */
  readonly statusDetails: readonly Any[];

  constructor(code: Code, details: string, statusDetails: readonly Any[], cause?: unknown) {
    const info = unpack(statusDetails, "google.rpc.ErrorInfo", ErrorInfo);
    super(
      info ? `${Code[code]} (${info.reason}): ${details}` : `${Code[code]}: ${details}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = "LivenessError";
    this.code = code;
    this.details = details;
    this.reason = info?.reason ?? "";
    this.domain = info?.domain ?? "";
    this.errorMetadata = info?.metadata ?? {};
    const delay = unpack(statusDetails, "google.rpc.RetryInfo", RetryInfo)?.retryDelay;
    this.retryDelayMs = delay ? delay.seconds * 1000 + delay.nanos / 1e6 : undefined;
    this.statusDetails = statusDetails;
  }

  /** Builds a LivenessError from what a grpc-js call rejected with. Idempotent. */
  static from(err: unknown): LivenessError {
    if (err instanceof LivenessError) return err;
    const e = err as Partial<ServiceError> | undefined;
    if (e === undefined || typeof e.code !== "number") {
      return new LivenessError(Code.UNKNOWN, String((err as Error)?.message ?? err), [], err);
    }
    let details: Any[] = [];
    const raw = e.metadata instanceof Metadata ? e.metadata.get(STATUS_DETAILS_KEY)[0] : undefined;
    if (raw instanceof Uint8Array) {
      try {
        details = Status.decode(raw).details;
      } catch {
        details = []; // a malformed trailer leaves the plain status, never a crash
      }
    }
    return new LivenessError(e.code, e.details ?? e.message ?? "", details, err);
  }
}

function unpack<T>(details: readonly Any[], name: string, type: { decode(b: Uint8Array): T }): T | undefined {
  const found = details.find((d) => d.typeUrl === TYPE_PREFIX + name);
  return found ? type.decode(found.value) : undefined;
}

/** Per-call options: a deadline (Date or ms since the epoch) and request metadata. */
export interface CallParams {
  deadline?: Date | number;
  metadata?: Metadata;
}

/** An AntiHackRequest whose flags default to false. */
export type AntiHackParams = Omit<AntiHackRequest, "returnImage" | "returnExtra"> &
  Partial<Pick<AntiHackRequest, "returnImage" | "returnExtra">>;

/** Calls liveness.v1.LivenessCheck; every method rejects with a LivenessError. */
export class LivenessClient {
  /** The generated grpc-js client on the same channel, for what this wrapper omits. */
  readonly stub: LivenessCheckClient;

  /**
   * @param target "host:port" or any gRPC target
   * @param creds e.g. credentials.createInsecure() or credentials.createSsl()
   * @param options channel options, applied over CHANNEL_OPTIONS
   */
  constructor(target: string, creds: ChannelCredentials, options: Partial<ClientOptions> = {}) {
    this.stub = new LivenessCheckClient(target, creds, { ...CHANNEL_OPTIONS, ...options });
  }

  /** Stores liveness data at the vendor and returns its id for detect. */
  upload(request: UploadRequest, params: CallParams = {}): Promise<UploadResponse> {
    return this.unary((m, o, cb) => this.stub.upload(request, m, o, cb), params);
  }

  /** Scores liveness data with LinkFace. */
  detect(request: DetectRequest, params: CallParams = {}): Promise<DetectResponse> {
    return this.unary((m, o, cb) => this.stub.detect(request, m, o, cb), params);
  }

  /** Scores liveness data with AccuAuth. */
  antiHack(request: AntiHackParams, params: CallParams = {}): Promise<AntiHackResponse> {
    const full: AntiHackRequest = { returnImage: false, returnExtra: false, ...request };
    return this.unary((m, o, cb) => this.stub.antiHack(full, m, o, cb), params);
  }

  /** Closes the channel. */
  close(): void {
    this.stub.close();
  }

  private unary<R>(
    call: (m: Metadata, o: Partial<CallOptions>, cb: (e: ServiceError | null, r: R) => void) => unknown,
    params: CallParams,
  ): Promise<R> {
    const options: Partial<CallOptions> = params.deadline === undefined ? {} : { deadline: params.deadline };
    return new Promise((resolve, reject) => {
      call(params.metadata ?? new Metadata(), options, (err, reply) =>
        err ? reject(LivenessError.from(err)) : resolve(reply),
      );
    });
  }
}
