// mTLS against a gateway that requires client certificates from its CA and authenticates
// callers by certificate, then by token: scripts/test-tls.sh.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Code, ErrorReason, LivenessClient, type LivenessClientOptions, LivenessError } from "../src";
import { failure, target } from "./gateway";
import { kyc, rootCerts, stranger, token } from "./pki";

const data = { source: { $case: "livenessData" as const, value: Buffer.from("SANDBOX:score=0.3") } };

async function withClient<T>(options: LivenessClientOptions, use: (c: LivenessClient) => Promise<T>): Promise<T> {
  const client = new LivenessClient(target, { deadlineMs: 10_000, ...options });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

async function livenessError(call: Promise<unknown>): Promise<LivenessError> {
  const err = await failure(call);
  assert.ok(err instanceof LivenessError, `want a LivenessError, got ${err}`);
  return err;
}

test("mTLS: a registered client certificate is the caller, for every RPC", async () => {
  await withClient({ tls: { rootCerts, ...kyc } }, async (client) => {
    assert.equal((await client.detect(data)).score, 0.3);
    const reply = await client.antiHack(data);
    assert.equal(reply.score, 0.3);
    assert.ok(reply.requestId);
  });
});

test("without a client certificate the handshake fails", async () => {
  await withClient({ tls: { rootCerts }, token }, async (client) => {
    const err = await livenessError(client.detect(data));
    assert.equal(err.code, Code.UNAVAILABLE);
    assert.equal(err.reason, ErrorReason.ERROR_REASON_UNSPECIFIED);
  });
});

test("mTLS with an unregistered certificate: the token names the caller", async () => {
  await withClient({ tls: { rootCerts, ...stranger } }, async (client) => {
    assert.equal((await livenessError(client.detect(data))).reason, ErrorReason.CALLER_UNKNOWN);
  });
  await withClient({ tls: { rootCerts, ...stranger }, token }, async (client) => {
    assert.equal((await client.detect(data)).score, 0.3);
    assert.equal((await livenessError(client.antiHack(data))).reason, ErrorReason.CALLER_NOT_ALLOWED);
  });
});
