// What the live tests share: the gateway's address and its sandbox's counters. Both come from
// scripts/with-gateway.sh; without them the tests fail rather than skip.
import assert from "node:assert/strict";

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run \`make test-client-typescript\`, or wrap the command in ` +
        "scripts/with-gateway.sh, which starts a gateway on its sandbox and sets it",
    );
  }
  return value;
}

export const target = required("LIVENESS_TARGET");
const sandboxUrl = required("LIVENESS_SANDBOX_URL");

export interface SandboxStats {
  /** Vendor calls received so far. */
  total: number;
  /** Vendor calls being answered now. */
  inFlight: number;
}

/** The sandbox's counters. */
export async function sandboxStats(): Promise<SandboxStats> {
  const response = await fetch(`${sandboxUrl}/_sandbox/stats`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(response.status, 200);
  const stats = (await response.json()) as { total: number; in_flight: number };
  // The sandbox's in_flight counts the stats request that reads it.
  return { total: stats.total, inFlight: stats.in_flight - 1 };
}

/** Polls the sandbox (every 20 ms, at most timeoutMs) until `done` holds; fails otherwise. */
export async function waitForSandbox(done: (s: SandboxStats) => boolean, timeoutMs: number, what: string) {
  const until = Date.now() + timeoutMs;
  let stats = await sandboxStats();
  while (!done(stats)) {
    assert.ok(Date.now() < until, `${what}: not within ${timeoutMs} ms (last stats ${JSON.stringify(stats)})`);
    await new Promise((r) => setTimeout(r, 20));
    stats = await sandboxStats();
  }
  return stats;
}

/** Awaits a call that must fail and returns its error. */
export async function failure(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (err) {
    return err;
  }
  assert.fail("the call succeeded");
}
