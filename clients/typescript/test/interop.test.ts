// Talks to a running gateway on its sandbox, whose address is in LIVENESS_TARGET
// (`make test-clients` starts one). Without it the tests fail rather than skip.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { credentials } from "@grpc/grpc-js";

import { Code, DOMAIN, LivenessClient, LivenessError, Reason, Verdict } from "../src";

const target = process.env.LIVENESS_TARGET;
if (!target) {
  throw new Error(
    "LIVENESS_TARGET is not set: run `make test-client-typescript`, or start " +
      "`liveness-gateway serve --sandbox` and set LIVENESS_TARGET=host:port",
  );
}
const client = new LivenessClient(target, credentials.createInsecure());
after(() => client.close());

const deadline = () => Date.now() + 30_000;

async function detectError(data: string): Promise<LivenessError> {
  try {
    await client.detect({ livenessData: Buffer.from(data) }, { deadline: deadline() });
  } catch (err) {
    assert.ok(err instanceof LivenessError, `want a LivenessError, got ${err}`);
    return err;
  }
  assert.fail(`${data} succeeded`);
}

test("Detect on SANDBOX:score=0.995 returns that score and VERDICT_HACK", async () => {
  const reply = await client.detect({ livenessData: Buffer.from("SANDBOX:score=0.995") }, { deadline: deadline() });
  assert.equal(reply.score, 0.995);
  assert.equal(reply.verdict, Verdict.VERDICT_HACK);
});

test("OUT_OF_QUOTA is RESOURCE_EXHAUSTED with that reason and no retry delay", async () => {
  const err = await detectError("SANDBOX:status=OUT_OF_QUOTA");
  assert.equal(err.code, Code.RESOURCE_EXHAUSTED);
  assert.equal(err.reason, Reason.OUT_OF_QUOTA);
  assert.equal(err.domain, DOMAIN);
  assert.ok(err.errorMetadata.vendor, "ErrorInfo metadata names the vendor");
  assert.equal(err.retryDelayMs, undefined);
});

test("RATE_LIMIT_EXCEEDED with retry_after=7 carries a 7 s RetryInfo", async () => {
  const err = await detectError("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=7");
  assert.equal(err.code, Code.RESOURCE_EXHAUSTED);
  assert.equal(err.reason, Reason.RATE_LIMIT_EXCEEDED);
  assert.equal(err.retryDelayMs, 7000);
});

test("a 5 MiB payload goes through", async () => {
  const head = Buffer.from("SANDBOX:score=0.5\n");
  const data = Buffer.concat([head, Buffer.alloc(5 * 1024 * 1024 - head.length, "x")]);
  assert.equal(data.length, 5 * 1024 * 1024);
  const reply = await client.detect({ livenessData: data }, { deadline: deadline() });
  assert.equal(reply.score, 0.5);
  assert.equal(reply.verdict, Verdict.VERDICT_LIVE);
});

test("one byte over 5 MiB is INVALID_REQUEST", async () => {
  const err = await detectError("x".repeat(5 * 1024 * 1024 + 1));
  assert.equal(err.code, Code.INVALID_ARGUMENT);
  assert.equal(err.reason, Reason.INVALID_REQUEST);
});
