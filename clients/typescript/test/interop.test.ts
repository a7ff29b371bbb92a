// The client against a live gateway on its sandbox with the default settings (vendor timeout
// 10 s): results and errors with their details and request id, message sizes, deadlines and
// cancellation, each seen from the gateway's side where it can be.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Code, DOMAIN, ErrorReason, LivenessClient, LivenessError, newIdempotencyKey, Verdict } from "../src";
import { failure, sandboxStats, target, waitForSandbox } from "./gateway";

const client = new LivenessClient(target);
after(() => client.close());

const data = (vector: string) => ({ source: { $case: "livenessData" as const, value: Buffer.from(vector) } });

async function livenessError(call: Promise<unknown>): Promise<LivenessError> {
  const err = await failure(call);
  assert.ok(err instanceof LivenessError, `want a LivenessError, got ${err}`);
  return err;
}

test("Detect returns the score, the verdict and the request id", async () => {
  const reply = await client.detect(data("SANDBOX:score=0.995"));
  assert.equal(reply.score, 0.995);
  assert.equal(reply.verdict, Verdict.VERDICT_HACK);
  assert.match(reply.requestId, /\S/);
});

test("Upload, then Detect by id; AntiHack with its flags", async () => {
  const uploaded = await client.upload(data("SANDBOX:score=0.1"));
  assert.ok(uploaded.livenessDataId);
  assert.ok(uploaded.requestId);
  const byId = await client.detect({ source: { $case: "livenessDataId", value: uploaded.livenessDataId } });
  assert.equal(byId.verdict, Verdict.VERDICT_LIVE);
  const anti = await client.antiHack({ ...data("SANDBOX:score=0.2"), returnExtra: true });
  assert.equal(anti.score, 0.2);
  assert.ok(anti.requestId);
  assert.notEqual(anti.requestId, byId.requestId, "one request id per call");
});

test("Upload sends an idempotency key and returns it; Detect sends one only when given", async () => {
  const uploaded = await client.upload(data("SANDBOX:score=0.3"));
  assert.match(uploaded.idempotencyKey, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(uploaded.idempotencyKey, uploaded.requestId);
  const mine = newIdempotencyKey();
  const again = await client.upload({ ...data("SANDBOX:score=0.3"), requestId: mine });
  assert.equal(again.idempotencyKey, mine);
  const byId = await client.detect({ source: { $case: "livenessDataId", value: again.livenessDataId } });
  assert.equal(byId.idempotencyKey, "");
  const other = newIdempotencyKey(); // one key per request: reusing one for another is REQUEST_ID_REUSED
  const err = await livenessError(client.detect({ ...data("SANDBOX:status=NO_FACE_DETECTED"), requestId: other }));
  assert.equal(err.reason, ErrorReason.NO_FACE_DETECTED);
  assert.equal(err.idempotencyKey, other);
});

test("OUT_OF_QUOTA: the reason, vendor metadata and a QuotaFailure, no RetryInfo", async () => {
  const err = await livenessError(client.detect(data("SANDBOX:status=OUT_OF_QUOTA")));
  assert.equal(err.code, Code.RESOURCE_EXHAUSTED);
  assert.equal(err.reason, ErrorReason.OUT_OF_QUOTA);
  assert.equal(err.domain, DOMAIN);
  assert.ok(err.errorMetadata.vendor, "ErrorInfo metadata names the vendor");
  assert.ok(err.quotaFailure && err.quotaFailure.violations.length > 0, "a QuotaFailure");
  assert.equal(err.retryInfo, undefined);
  assert.equal(err.retryDelayMs, undefined);
  assert.ok(err.requestId);
  assert.match(err.message, /OUT_OF_QUOTA/);
});

// grpc-js's retry throttling is per target for the whole process: this test expects the tokens
// that the failures before it left (enough for two resends); the conformance table isolates cases.
test("a vendor rate limit: RetryInfo with the vendor's Retry-After, after the client's resends", async () => {
  const before = (await sandboxStats()).total;
  const err = await livenessError(client.detect(data("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=0.2")));
  assert.equal(err.code, Code.RESOURCE_EXHAUSTED);
  assert.equal(err.reason, ErrorReason.RATE_LIMIT_EXCEEDED);
  assert.equal(err.retryDelayMs, 200);
  assert.ok(err.quotaFailure, "a QuotaFailure");
  assert.equal((await sandboxStats()).total - before, 3, "three attempts by the service config, no more");
});

test("validation: INVALID_REQUEST with a BadRequest naming the field, no vendor call", async () => {
  const before = (await sandboxStats()).total;
  const err = await livenessError(client.detect({ source: { $case: "livenessDataUrl", value: "ftp://x" } }));
  assert.equal(err.code, Code.INVALID_ARGUMENT);
  assert.equal(err.reason, ErrorReason.INVALID_REQUEST);
  const fields = err.badRequest?.fieldViolations.map((v) => v.field) ?? [];
  assert.ok(fields.some((f) => f.includes("liveness_data_url")), `fields: ${fields}`);
  assert.ok(err.requestId);
  assert.equal((await sandboxStats()).total, before);
});

test("a 5 MiB payload goes through; one byte more is INVALID_REQUEST", async () => {
  const head = Buffer.from("SANDBOX:score=0.5\n");
  const big = Buffer.concat([head, Buffer.alloc(5 * 1024 * 1024 - head.length, "x")]);
  const reply = await client.detect({ source: { $case: "livenessData", value: big } });
  assert.equal(reply.score, 0.5);
  const over = Buffer.alloc(5 * 1024 * 1024 + 1, "x");
  const err = await livenessError(client.detect({ source: { $case: "livenessData", value: over } }));
  assert.equal(err.reason, ErrorReason.INVALID_REQUEST);
});

test("an aborted call is cancelled at the gateway, which drops its vendor call", async () => {
  const before = await waitForSandbox((s) => s.inFlight === 0, 5_000, "nothing in flight first");
  const controller = new AbortController();
  const started = Date.now();
  const call = client.detect(data("SANDBOX:score=0.3;delay_ms=8000"), { signal: controller.signal });
  await waitForSandbox((s) => s.inFlight === 1, 5_000, "the vendor call starts");
  controller.abort();
  const err = await livenessError(call);
  assert.equal(err.code, Code.CANCELLED);
  assert.equal(err.reason, ErrorReason.ERROR_REASON_UNSPECIFIED, "no answer from the gateway");
  // The sandbox would answer after 8 s; the vendor call ends long before, when the gateway
  // cancels it on the caller's RST_STREAM.
  const afterAbort = await waitForSandbox((s) => s.inFlight === 0, 3_000, "the gateway cancels the vendor call");
  assert.ok(Date.now() - started < 6_000);
  assert.equal(afterAbort.total - before.total, 1, "one vendor call, not resent");
});

test("an already aborted signal makes no call", async () => {
  const before = (await sandboxStats()).total;
  const err = await livenessError(client.detect(data("SANDBOX:score=0.3"), { signal: AbortSignal.abort() }));
  assert.equal(err.code, Code.CANCELLED);
  assert.equal((await sandboxStats()).total, before);
});

test("a per-call deadline, and the client's default deadline", async () => {
  let started = Date.now();
  let err = await livenessError(client.detect(data("SANDBOX:score=0.3;delay_ms=3000"), { deadline: Date.now() + 400 }));
  assert.equal(err.code, Code.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - started < 2_500, "the call ends at its deadline");

  const short = new LivenessClient(target, { deadlineMs: 400 });
  try {
    started = Date.now();
    err = await livenessError(short.detect(data("SANDBOX:score=0.3;delay_ms=3000")));
    assert.equal(err.code, Code.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - started < 2_500, "the call ends at the client's deadline");
  } finally {
    short.close();
  }
  await waitForSandbox((s) => s.inFlight === 0, 5_000, "the expired calls leave nothing in flight");
});

test("a refused connection is UNAVAILABLE without a reason or request id", async () => {
  const nowhere = new LivenessClient("127.0.0.1:1", { deadlineMs: 5_000 });
  try {
    const err = await livenessError(nowhere.detect(data("SANDBOX:score=0.3")));
    assert.equal(err.code, Code.UNAVAILABLE);
    assert.equal(err.reason, ErrorReason.ERROR_REASON_UNSPECIFIED);
    assert.equal(err.requestId, "");
  } finally {
    nowhere.close();
  }
});
