/**
 * TypeScript client for liveness-gateway (liveness.v1.LivenessCheck) on @grpc/grpc-js.
 *
 *   const client = new LivenessClient("localhost:50051");
 *   try {
 *     const reply = await client.detect({ source: { $case: "livenessData", value: data } });
 *     console.log(reply.score, Verdict[reply.verdict], reply.requestId);
 *   } catch (err) {
 *     if (err instanceof LivenessError && err.reason === ErrorReason.OUT_OF_QUOTA) { ... }
 *   }
 */
import { status as Code } from "@grpc/grpc-js";

export * from "./client";
export * from "./errors";
export { isValidIdempotencyKey, newIdempotencyKey } from "./idempotency";
export * from "./gen/liveness/v1/liveness";
export { ErrorReason, errorReasonFromJSON, errorReasonToJSON } from "./gen/liveness/v1/error_reason";
export { Any } from "./gen/google/protobuf/any";
export { BadRequest, ErrorInfo, QuotaFailure, RetryInfo } from "./gen/google/rpc/error_details";
export { Status } from "./gen/google/rpc/status";
export { Code };
