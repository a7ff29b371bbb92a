/**
 * The idempotency key (AIP-155): the `requestId` field of UploadRequest, DetectRequest and
 * AntiHackRequest, a UUID in its canonical 36-character form. Within the gateway's idempotency
 * window the same caller sending the same key with the same input gets the first call's result
 * (or error) without a second vendor call; the same key with another input is refused
 * INVALID_ARGUMENT, reason REQUEST_ID_REUSED. Not the x-request-id correlation id (`requestId`
 * on replies and errors), which names one call in the gateway's logs.
 *
 * `upload` creates an object at the vendor, so an upload without a key gets a fresh one, made
 * once per call and sent unchanged on every attempt grpc-js makes; replies and errors give it
 * back as `idempotencyKey`, for a resend of the same upload. `detect` and `antiHack` are reads
 * at the vendor, which the gateway retries itself: they send a key only when the caller sets one.
 */
import { randomUUID } from "node:crypto";

import { status as Code } from "@grpc/grpc-js";

import { DOMAIN, LivenessError } from "./errors";
import { Any } from "./gen/google/protobuf/any";
import { BadRequest, ErrorInfo } from "./gen/google/rpc/error_details";

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A random (version 4) UUID in its canonical form: the key `upload` makes when none is given. */
export function newIdempotencyKey(): string {
  return randomUUID();
}

/** Whether `key` is a UUID in its canonical 36-character form (8-4-4-4-12 hex digits, either case). */
export function isValidIdempotencyKey(key: string): boolean {
  return CANONICAL_UUID.test(key);
}

/**
 * The gateway's answer to a malformed requestId, made by the client before anything is sent:
 * INVALID_ARGUMENT, reason INVALID_REQUEST, a BadRequest naming request_id.
 */
export function invalidKeyError(key: string): LivenessError {
  const shown = key.length > 64 ? `${key.slice(0, 64)}...` : key;
  const details = [
    Any.fromPartial({
      typeUrl: "type.googleapis.com/google.rpc.ErrorInfo",
      value: Buffer.from(ErrorInfo.encode(ErrorInfo.fromPartial({ reason: "INVALID_REQUEST", domain: DOMAIN })).finish()),
    }),
    Any.fromPartial({
      typeUrl: "type.googleapis.com/google.rpc.BadRequest",
      value: Buffer.from(
        BadRequest.encode(
          BadRequest.fromPartial({
            fieldViolations: [{ field: "request_id", description: `${JSON.stringify(shown)} is not a UUID (8-4-4-4-12 hex digits)` }],
          }),
        ).finish(),
      ),
    }),
  ];
  return new LivenessError(
    Code.INVALID_ARGUMENT,
    "request_id must be a UUID in its canonical 36-character form (checked by the client; nothing was sent)",
    details,
    "",
    undefined,
    key,
  );
}
