// LivenessError unpacks grpc-status-details-bin without a server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Metadata } from "@grpc/grpc-js";

import { Code, DOMAIN, ErrorInfo, LivenessError, Reason, RetryInfo, Status } from "../src";

function serviceError(code: number, details: string, status?: Status) {
  const metadata = new Metadata();
  if (status) metadata.set("grpc-status-details-bin", Buffer.from(Status.encode(status).finish()));
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

test("reason, metadata and retry delay come from the status details", () => {
  const err = LivenessError.from(
    serviceError(Code.RESOURCE_EXHAUSTED, "slow down", {
      code: Code.RESOURCE_EXHAUSTED,
      message: "slow down",
      details: [
        {
          typeUrl: "type.googleapis.com/google.rpc.ErrorInfo",
          value: Buffer.from(ErrorInfo.encode({ reason: Reason.RATE_LIMIT_EXCEEDED, domain: DOMAIN, metadata: { vendor: "linkface" } }).finish()),
        },
        {
          typeUrl: "type.googleapis.com/google.rpc.RetryInfo",
          value: Buffer.from(RetryInfo.encode({ retryDelay: { seconds: 7, nanos: 500_000_000 } }).finish()),
        },
      ],
    }),
  );
  assert.equal(err.code, Code.RESOURCE_EXHAUSTED);
  assert.equal(err.reason, Reason.RATE_LIMIT_EXCEEDED);
  assert.equal(err.domain, DOMAIN);
  assert.deepEqual(err.errorMetadata, { vendor: "linkface" });
  assert.equal(err.retryDelayMs, 7500);
  assert.equal(LivenessError.from(err), err);
});

test("an error without details has no reason and no retry delay", () => {
  const err = LivenessError.from(serviceError(Code.UNAVAILABLE, "connection refused"));
  assert.equal(err.code, Code.UNAVAILABLE);
  assert.equal(err.reason, "");
  assert.equal(err.retryDelayMs, undefined);
  assert.equal(LivenessError.from(new Error("boom")).code, Code.UNKNOWN);
});
