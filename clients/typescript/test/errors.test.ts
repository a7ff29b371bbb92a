// LivenessError decodes grpc-status-details-bin and the trailers; the client's defaults and
// option checks. No gateway needed.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { credentials, Metadata } from "@grpc/grpc-js";

import {
  BadRequest,
  CHANNEL_OPTIONS,
  Code,
  DEFAULT_DEADLINE_MS,
  DOMAIN,
  ErrorInfo,
  ErrorReason,
  LivenessClient,
  LivenessError,
  QuotaFailure,
  RetryInfo,
  SERVICE_CONFIG,
  Status,
} from "../src";

function serviceError(code: number, details: string, status?: Status, requestId?: string) {
  const metadata = new Metadata();
  if (status) metadata.set("grpc-status-details-bin", Buffer.from(Status.encode(status).finish()));
  if (requestId) metadata.set("x-request-id", requestId);
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

const any = (name: string, value: Uint8Array) => ({ typeUrl: `type.googleapis.com/google.rpc.${name}`, value: Buffer.from(value) });

test("reason, RetryInfo, QuotaFailure, BadRequest and request id come from the trailers", () => {
  const err = LivenessError.from(
    serviceError(
      Code.RESOURCE_EXHAUSTED,
      "slow down",
      {
        code: Code.RESOURCE_EXHAUSTED,
        message: "slow down",
        details: [
          any("ErrorInfo", ErrorInfo.encode({ reason: "CALLER_RATE_LIMITED", domain: DOMAIN, metadata: { caller: "a" } }).finish()),
          any("RetryInfo", RetryInfo.encode({ retryDelay: { seconds: 7, nanos: 500_000_000 } }).finish()),
          any("QuotaFailure", QuotaFailure.encode({ violations: [{ subject: "caller:a", description: "20/s", apiService: "", quotaMetric: "", quotaId: "", quotaDimensions: {}, quotaValue: 0, futureQuotaValue: undefined }] }).finish()),
          any("BadRequest", BadRequest.encode({ fieldViolations: [{ field: "f", description: "d", reason: "", localizedMessage: undefined }] }).finish()),
        ],
      },
      "req-1",
    ),
  );
  assert.equal(err.code, Code.RESOURCE_EXHAUSTED);
  assert.equal(err.reason, ErrorReason.CALLER_RATE_LIMITED);
  assert.equal(err.domain, DOMAIN);
  assert.deepEqual(err.errorMetadata, { caller: "a" });
  assert.equal(err.retryDelayMs, 7500);
  assert.equal(err.quotaFailure?.violations[0].subject, "caller:a");
  assert.equal(err.badRequest?.fieldViolations[0].field, "f");
  assert.equal(err.requestId, "req-1");
  assert.match(err.message, /RESOURCE_EXHAUSTED \(CALLER_RATE_LIMITED\): slow down \[request req-1\]/);
  assert.equal(LivenessError.from(err), err);
});

test("a reason outside the catalogue is UNRECOGNIZED, kept as sent", () => {
  const err = LivenessError.from(
    serviceError(Code.INTERNAL, "x", {
      code: Code.INTERNAL,
      message: "x",
      details: [any("ErrorInfo", ErrorInfo.encode({ reason: "FROM_THE_FUTURE", domain: DOMAIN, metadata: {} }).finish())],
    }),
  );
  assert.equal(err.reason, ErrorReason.UNRECOGNIZED);
  assert.equal(err.errorInfo?.reason, "FROM_THE_FUTURE");
});

test("without details: no reason, no retry delay; malformed details do not throw", () => {
  const err = LivenessError.from(serviceError(Code.UNAVAILABLE, "connection refused"));
  assert.equal(err.code, Code.UNAVAILABLE);
  assert.equal(err.reason, ErrorReason.ERROR_REASON_UNSPECIFIED);
  assert.equal(err.retryDelayMs, undefined);
  assert.equal(err.requestId, "");
  assert.equal(LivenessError.from(new Error("boom")).code, Code.UNKNOWN);
  const bad = new Metadata();
  bad.set("grpc-status-details-bin", Buffer.from([0xff, 0xff, 0xff]));
  assert.equal(LivenessError.from({ code: Code.INTERNAL, details: "d", metadata: bad }).reason, ErrorReason.ERROR_REASON_UNSPECIFIED);
});

test("the shipped service config is the one beside the proto, and the default deadline its timeout", () => {
  // build/test/ -> protos/liveness/v1/service_config.json at the repository root
  const path = join(__dirname, "..", "..", "..", "..", "protos", "liveness", "v1", "service_config.json");
  assert.deepEqual(SERVICE_CONFIG, JSON.parse(readFileSync(path, "utf8")));
  assert.equal(CHANNEL_OPTIONS["grpc.service_config"], JSON.stringify(SERVICE_CONFIG));
  assert.equal(`${DEFAULT_DEADLINE_MS / 1000}s`, SERVICE_CONFIG.methodConfig[0].timeout);
});

test("credential options are checked", () => {
  assert.throws(() => new LivenessClient("localhost:1", { token: "t" }), /bearer token needs TLS/);
  assert.throws(
    () => new LivenessClient("localhost:1", { credentials: credentials.createInsecure(), tls: true }),
    /either credentials or tls/,
  );
  assert.throws(() => new LivenessClient("localhost:1", { tls: { certChain: Buffer.from("x") } }), /mTLS needs both/);
  new LivenessClient("localhost:1", { tls: true, token: () => "t" }).close();
});
