/**
 * LivenessError: a failed call with the gateway's rich error details decoded (ErrorInfo as the
 * generated ErrorReason, RetryInfo, QuotaFailure, BadRequest) and the request id the gateway
 * put in the trailers.
 */
import { Metadata, type ServiceError, status as Code } from "@grpc/grpc-js";

import { Any } from "./gen/google/protobuf/any";
import { BadRequest, ErrorInfo, QuotaFailure, RetryInfo } from "./gen/google/rpc/error_details";
import { Status } from "./gen/google/rpc/status";
import { ErrorReason, errorReasonFromJSON } from "./gen/liveness/v1/error_reason";

/** The ErrorInfo domain of every error the gateway produces. */
export const DOMAIN = "liveness.v1";

/** The trailer in which the gateway returns its request id, on results and errors alike. */
export const REQUEST_ID_KEY = "x-request-id";

const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const TYPE_PREFIX = "type.googleapis.com/";

/** The value of x-request-id in trailing metadata, or "" when there is none. */
export function requestIdOf(metadata: Metadata | undefined): string {
  const value = metadata?.get(REQUEST_ID_KEY)[0];
  return value === undefined ? "" : value.toString();
}

/**
 * A failed call. Every method of LivenessClient rejects with one.
 *
 * `reason` is ERROR_REASON_UNSPECIFIED when the failure carries no ErrorInfo, i.e. it never got
 * an answer from the gateway (a refused connection, the client's own deadline, an aborted call):
 * `code` then tells what happened. A reason string outside the catalogue (a newer gateway) is
 * UNRECOGNIZED, with the string in `errorInfo.reason`.
 */
export class LivenessError extends Error {
  /** The gRPC status code (grpc-js `status` enum, re-exported as `Code`). */
  readonly code: Code;
  /** The status message, without the code. */
  readonly details: string;
  /** ErrorInfo.reason as the contract's enum. */
  readonly reason: ErrorReason;
  /** The ErrorInfo as sent, when there was one. */
  readonly errorInfo: ErrorInfo | undefined;
  /** ErrorInfo.domain, "liveness.v1" for every error of the gateway. */
  readonly domain: string;
  /** ErrorInfo.metadata: vendor, httpStatus, vendorRequestId, vendorReason... where known. */
  readonly errorMetadata: Readonly<Record<string, string>>;
  /** google.rpc.RetryInfo, on transient refusals (rate limits, overload, an open breaker). */
  readonly retryInfo: RetryInfo | undefined;
  /** RetryInfo.retry_delay in milliseconds; undefined without a RetryInfo. */
  readonly retryDelayMs: number | undefined;
  /** google.rpc.QuotaFailure, on rate limits and quotas: which quota, whose. */
  readonly quotaFailure: QuotaFailure | undefined;
  /** google.rpc.BadRequest, on INVALID_REQUEST: the field at fault and why. */
  readonly badRequest: BadRequest | undefined;
  /** The gateway's x-request-id for this call (quote it in a support case); "" without one. */
  readonly requestId: string;
  /** Every detail of the google.rpc.Status, decoded or not. */
  readonly statusDetails: readonly Any[];
  /**
   * The request's requestId (AIP-155 idempotency key) the call sent: always set for an upload
   * (the caller's or the one the client made); "" when none was sent. Resend the same request
   * with it as requestId to get the first call's outcome instead of a second vendor call.
   */
  readonly idempotencyKey: string;

  constructor(
    code: Code,
    details: string,
    statusDetails: readonly Any[] = [],
    requestId = "",
    cause?: unknown,
    idempotencyKey = "",
  ) {
    const info = unpack(statusDetails, "google.rpc.ErrorInfo", ErrorInfo);
    const reason = info ? errorReasonFromJSON(info.reason) : ErrorReason.ERROR_REASON_UNSPECIFIED;
    const label = info ? `${Code[code]} (${info.reason})` : Code[code];
    super(`${label}: ${details}${requestId ? ` [request ${requestId}]` : ""}`, cause === undefined ? undefined : { cause });
    this.name = "LivenessError";
    this.code = code;
    this.details = details;
    this.reason = reason;
    this.errorInfo = info;
    this.domain = info?.domain ?? "";
    this.errorMetadata = info?.metadata ?? {};
    this.retryInfo = unpack(statusDetails, "google.rpc.RetryInfo", RetryInfo);
    const delay = this.retryInfo?.retryDelay;
    this.retryDelayMs = delay ? delay.seconds * 1000 + delay.nanos / 1e6 : undefined;
    this.quotaFailure = unpack(statusDetails, "google.rpc.QuotaFailure", QuotaFailure);
    this.badRequest = unpack(statusDetails, "google.rpc.BadRequest", BadRequest);
    this.requestId = requestId;
    this.statusDetails = statusDetails;
    this.idempotencyKey = idempotencyKey;
  }

  /**
   * Builds a LivenessError from what a grpc-js call failed with, carrying the idempotency key
   * the call sent. Idempotent: a LivenessError is returned as it is.
   */
  static from(err: unknown, idempotencyKey = ""): LivenessError {
    if (err instanceof LivenessError) return err;
    const e = err as Partial<ServiceError> | undefined;
    if (e === undefined || e === null || typeof e.code !== "number") {
      return new LivenessError(Code.UNKNOWN, String((err as Error)?.message ?? err), [], "", err, idempotencyKey);
    }
    // grpc-js copies are told apart by shape, not instanceof: the metadata may come from another.
    const metadata = e.metadata && typeof e.metadata.get === "function" ? (e.metadata as Metadata) : undefined;
    let details: Any[] = [];
    const raw = metadata?.get(STATUS_DETAILS_KEY)[0];
    if (raw instanceof Uint8Array) {
      try {
        details = Status.decode(raw).details;
      } catch {
        details = []; // a malformed trailer leaves the plain status, never a crash
      }
    }
    return new LivenessError(e.code, e.details ?? e.message ?? "", details, requestIdOf(metadata), err, idempotencyKey);
  }
}

function unpack<T>(details: readonly Any[], name: string, type: { decode(b: Uint8Array): T }): T | undefined {
  const found = details.find((d) => d.typeUrl === TYPE_PREFIX + name);
  if (!found) return undefined;
  try {
    return type.decode(found.value);
  } catch {
    return undefined; // one undecodable detail must not hide the others
  }
}
