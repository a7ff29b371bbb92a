// The idempotency key (the requests' requestId, AIP-155) against a stand-in for the gateway in
// this process: a grpc-js server from the generated service definition that records every
// attempt's requestId and x-request-id and fails the first attempts with a resendable status
// and a grpc-retry-pushback-ms. No vendor, no sandbox.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import {
  type sendUnaryData,
  Server,
  type ServerUnaryCall,
  ServerCredentials,
  Metadata,
  status as GrpcStatus,
} from "@grpc/grpc-js";

import {
  Code,
  DOMAIN,
  ErrorInfo,
  ErrorReason,
  isValidIdempotencyKey,
  LivenessCheckService,
  LivenessClient,
  LivenessError,
  newIdempotencyKey,
  Status,
} from "../src";

/** Awaits a call that must fail and returns its error (no gateway here: not ./gateway's). */
async function failure(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (err) {
    return err;
  }
  assert.fail("the call succeeded");
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Attempt {
  key: string;
  xRequestId: string;
}

/** A stand-in gateway failing the first `failFirst` attempts with `code` (and its details). */
async function recordingGateway(failFirst: number, code: number = GrpcStatus.UNAVAILABLE, reason = "OVERLOADED") {
  const attempts: Attempt[] = [];
  const server = new Server();
  const handle =
    (reply: object) =>
    (call: ServerUnaryCall<{ requestId: string }, object>, callback: sendUnaryData<object>) => {
      attempts.push({ key: call.request.requestId, xRequestId: String(call.metadata.get("x-request-id")[0] ?? "") });
      if (attempts.length <= failFirst) {
        const trailers = new Metadata();
        trailers.set("grpc-retry-pushback-ms", "10");
        const info = ErrorInfo.encode(ErrorInfo.fromPartial({ reason, domain: DOMAIN })).finish();
        const details = Status.encode(
          Status.fromPartial({ code, message: reason, details: [{ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(info) }] }),
        ).finish();
        trailers.set("grpc-status-details-bin", Buffer.from(details));
        callback({ code, details: reason, metadata: trailers });
        return;
      }
      callback(null, reply);
    };
  server.addService(LivenessCheckService, {
    upload: handle({ livenessDataId: "ld-1", vendorRequestId: "TID1" }),
    detect: handle({ score: 0.5, verdict: 0, threshold: 0.98, livenessDataId: "", vendorRequestId: "" }),
    antiHack: handle({ score: 0.5, verdict: 0, threshold: 0.98, image: Buffer.alloc(0), vendorRequestId: "" }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const client = new LivenessClient(`127.0.0.1:${port}`);
  after(() => {
    client.close();
    server.forceShutdown();
  });
  return { client, attempts };
}

const bytes = { source: { $case: "livenessData" as const, value: Buffer.from("x") } };

test("an upload's key is made once and sent unchanged on every attempt", async () => {
  const { client, attempts } = await recordingGateway(2);
  const request = { ...bytes };
  const reply = await client.upload(request);
  assert.equal(attempts.length, 3, "two refused attempts and the one that answered");
  assert.match(reply.idempotencyKey, UUID_V4);
  assert.deepEqual(
    attempts.map((a) => a.key),
    [reply.idempotencyKey, reply.idempotencyKey, reply.idempotencyKey],
  );
  assert.equal(reply.livenessDataId, "ld-1");
  assert.equal("requestId" in request, false, "the caller's request is not changed");
  // The next upload is another upload: another key.
  const second = await client.upload(bytes);
  assert.match(second.idempotencyKey, UUID_V4);
  assert.notEqual(second.idempotencyKey, reply.idempotencyKey);
  assert.equal(attempts[3].key, second.idempotencyKey);
});

test("a failed upload names its key, and a resend with it carries it", async () => {
  const { client, attempts } = await recordingGateway(3);
  const err = await failure(client.upload(bytes));
  assert.ok(err instanceof LivenessError);
  assert.equal(err.code, Code.UNAVAILABLE);
  assert.equal(attempts.length, 3);
  assert.match(err.idempotencyKey, UUID_V4);
  assert.deepEqual(new Set(attempts.map((a) => a.key)), new Set([err.idempotencyKey]));
  const resent = await client.upload({ ...bytes, requestId: err.idempotencyKey });
  assert.equal(resent.idempotencyKey, err.idempotencyKey);
  assert.equal(attempts[3].key, err.idempotencyKey);
});

test("detect and antiHack send a key only when given; a caller's key goes as it is", async () => {
  const { client, attempts } = await recordingGateway(0);
  const mine = "0F8FAD5B-D9CB-469F-A165-70867728950E";
  const plain = await client.detect(bytes);
  const keyed = await client.detect({ ...bytes, requestId: mine });
  const anti = await client.antiHack({ source: { $case: "imageId", value: "img" } });
  const up = await client.upload({ ...bytes, requestId: mine });
  assert.deepEqual(
    attempts.map((a) => a.key),
    ["", mine, "", mine],
  );
  assert.deepEqual([plain.idempotencyKey, keyed.idempotencyKey, anti.idempotencyKey, up.idempotencyKey], ["", mine, "", mine]);
  assert.ok(attempts.every((a) => a.xRequestId !== mine), "the key is not the x-request-id");
});

test("a malformed key is refused as the gateway would, before anything is sent", async () => {
  const { client, attempts } = await recordingGateway(0);
  for (const bad of ["order-4711", "0f8fad5bd9cb469fa16570867728950e", "0f8fad5b-d9cb-469f-a165-70867728950g"]) {
    for (const call of [client.upload({ ...bytes, requestId: bad }), client.detect({ ...bytes, requestId: bad })]) {
      const err = await failure(call);
      assert.ok(err instanceof LivenessError);
      assert.equal(err.code, Code.INVALID_ARGUMENT);
      assert.equal(err.reason, ErrorReason.INVALID_REQUEST);
      assert.equal(err.domain, DOMAIN);
      assert.equal(err.badRequest?.fieldViolations[0]?.field, "request_id");
      assert.equal(err.idempotencyKey, bad);
    }
  }
  assert.equal(attempts.length, 0);
});

test("REQUEST_ID_REUSED is the typed reason, never resent, with the key", async () => {
  const { client, attempts } = await recordingGateway(3, GrpcStatus.INVALID_ARGUMENT, "REQUEST_ID_REUSED");
  const key = newIdempotencyKey();
  const err = await failure(client.upload({ ...bytes, requestId: key }));
  assert.ok(err instanceof LivenessError);
  assert.equal(err.code, Code.INVALID_ARGUMENT);
  assert.equal(err.reason, ErrorReason.REQUEST_ID_REUSED);
  assert.equal(err.idempotencyKey, key);
  assert.equal(attempts.length, 1);
});

test("newIdempotencyKey and isValidIdempotencyKey", () => {
  for (let i = 0; i < 100; i++) {
    const key = newIdempotencyKey();
    assert.match(key, UUID_V4);
    assert.ok(isValidIdempotencyKey(key));
  }
  assert.ok(isValidIdempotencyKey("0F8FAD5B-D9CB-469F-A165-70867728950E"));
  assert.ok(isValidIdempotencyKey("00000000-0000-0000-0000-000000000000"), "any UUID, not only v4");
  for (const bad of ["", "{0f8fad5b-d9cb-469f-a165-70867728950e}", "0f8fad5b-d9cb-469f-a165-70867728950e ", "urn:uuid:0f8fad5b-d9cb-469f-a165-7086"]) {
    assert.equal(isValidIdempotencyKey(bad), false, bad);
  }
});
