// TLS and the bearer token against a gateway with TLS and caller authentication (no client
// certificates required): scripts/test-tls.sh.
import assert from "node:assert/strict";
import { test } from "node:test";

import { credentials } from "@grpc/grpc-js";

import { Code, ErrorReason, LivenessClient, type LivenessClientOptions, LivenessError } from "../src";
import { failure, target } from "./gateway";
import { rootCerts, token } from "./pki";

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

test("tls with the CA and a token: the caller is known and held to its RPCs", async () => {
  await withClient({ tls: { rootCerts }, token }, async (client) => {
    const reply = await client.detect(data);
    assert.equal(reply.score, 0.3);
    assert.ok(reply.requestId);
    const err = await livenessError(client.antiHack(data));
    assert.equal(err.code, Code.PERMISSION_DENIED);
    assert.equal(err.reason, ErrorReason.CALLER_NOT_ALLOWED);
    assert.ok(err.requestId);
  });
});

test("a token function is asked on every call; a wrong token is CALLER_UNKNOWN", async () => {
  let asked = 0;
  const wrong = async () => {
    asked += 1;
    return "not-the-token";
  };
  await withClient({ tls: { rootCerts }, token: wrong }, async (client) => {
    const err = await livenessError(client.detect(data));
    assert.equal(err.code, Code.UNAUTHENTICATED);
    assert.equal(err.reason, ErrorReason.CALLER_UNKNOWN);
    await livenessError(client.detect(data));
  });
  assert.equal(asked, 2);
});

test("without a token the caller is unknown", async () => {
  await withClient({ tls: { rootCerts } }, async (client) => {
    assert.equal((await livenessError(client.detect(data))).reason, ErrorReason.CALLER_UNKNOWN);
  });
});

test("the application's own grpc-js credentials, with the token", async () => {
  await withClient({ credentials: credentials.createSsl(rootCerts), token }, async (client) => {
    assert.equal((await client.detect(data)).score, 0.3);
  });
});

test("the gateway's certificate is verified: the system's roots do not trust it", async () => {
  await withClient({ tls: true, token }, async (client) => {
    const err = await livenessError(client.detect(data));
    assert.equal(err.code, Code.UNAVAILABLE);
    assert.equal(err.reason, ErrorReason.ERROR_REASON_UNSPECIFIED);
  });
});
