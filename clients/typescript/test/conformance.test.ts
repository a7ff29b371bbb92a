// clients/conformance.json, the table every client runs against the same kind of live gateway:
// each case on a new client with default settings, checking code, reason (as ErrorReason),
// request id, the vendor calls the sandbox counted and the least time the call may take.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Code, DOMAIN, ErrorReason, errorReasonFromJSON } from "../src";
import type { Case } from "./conformance-case";
import { sandboxStats } from "./gateway";

// build/test/ -> clients/conformance.json
const table = JSON.parse(readFileSync(join(__dirname, "..", "..", "..", "conformance.json"), "utf8")) as {
  gateway_env: Record<string, string>;
  cases: Case[];
};

test("the gateway runs with the table's gateway_env", () => {
  for (const [name, value] of Object.entries(table.gateway_env)) {
    assert.equal(process.env[name], value, `${name} (the Makefile sets it for the gateway)`);
  }
  assert.ok(table.cases.length > 0);
});

// grpc-js keeps retry throttling per target for the whole process (its RETRY_THROTTLER_MAP),
// not per channel: a new client in this process would inherit the tokens the earlier cases'
// failures spent. So each case runs its client in a process of its own (conformance-case.ts),
// which is what "a new client with its default settings" is for grpc-js.
interface Outcome {
  code: number;
  reason: ErrorReason;
  domain: string;
  requestId: string;
  idempotencyKey: string;
  livenessDataId?: string;
  score?: number;
  message: string;
  elapsedMs: number;
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** Case name -> the livenessDataId its result had (cases run in order). */
const dataIds = new Map<string, string>();

function runCase(c: Case): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(__dirname, "conformance-case.js"), JSON.stringify(c)],
      { timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`conformance-case: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Outcome);
      },
    );
  });
}

for (const c of table.cases) {
  test(`conformance: ${c.name}`, async () => {
    const before = (await sandboxStats()).total;
    const out = await runCase(c);
    const vendorCalls = (await sandboxStats()).total - before;

    assert.equal(Code[out.code], c.code, out.message);
    if (c.code === "OK") {
      assert.equal(c.reason, "");
      if (c.score !== undefined) assert.equal(out.score, c.score);
      assert.ok(out.requestId, "a result carries the request id");
    } else {
      const want = errorReasonFromJSON(c.reason);
      assert.notEqual(want, ErrorReason.UNRECOGNIZED, `${c.reason} is in the catalogue`);
      assert.equal(ErrorReason[out.reason], ErrorReason[want], out.message);
      assert.equal(out.domain, DOMAIN);
      assert.ok(out.requestId, "an error carries the request id");
    }
    // The idempotency key: the request's own, or one the client made for an upload.
    const given = c.request.request_id;
    if (given !== undefined) assert.equal(out.idempotencyKey, given);
    else if (c.rpc === "Upload") assert.match(out.idempotencyKey, UUID_V4);
    else assert.equal(out.idempotencyKey, "");
    dataIds.set(c.name, out.livenessDataId ?? "");
    if (c.same_liveness_data_id_as !== undefined) {
      const earlier = dataIds.get(c.same_liveness_data_id_as);
      assert.ok(earlier, `a livenessDataId from case ${c.same_liveness_data_id_as}`);
      assert.equal(out.livenessDataId, earlier);
    }
    assert.equal(vendorCalls, c.vendor_calls, "vendor calls counted at the sandbox");
    assert.ok(
      out.elapsedMs >= c.min_elapsed_s * 1000,
      `took ${out.elapsedMs.toFixed(0)} ms, less than the advised ${c.min_elapsed_s * 1000} ms`,
    );
  });
}
