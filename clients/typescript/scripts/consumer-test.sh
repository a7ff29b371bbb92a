#!/usr/bin/env bash
# The README's install route, followed from outside the repository: a copy of clients/typescript
# as a fresh checkout has it, `npm ci && npm pack` there, then a new application in a temporary
# directory that runs `npm install <tarball> @grpc/grpc-js`, builds with tsc and calls the
# gateway at LIVENESS_TARGET with credentials from its own @grpc/grpc-js: a score, then an
# error with its reason, its request id and the vendor calls the sandbox counted, and a rate
# limit resent after the advised delay.
#   scripts/with-gateway.sh clients/typescript/scripts/consumer-test.sh
# GRPC_JS_VERSION picks the application's @grpc/grpc-js (default: the version the client's tests
# pin); run it with the lowest the peer range admits as well.
set -euo pipefail
client=$(cd "$(dirname "$0")/.." && pwd)
: "${LIVENESS_TARGET:?run under scripts/with-gateway.sh}" "${LIVENESS_SANDBOX_URL:?run under scripts/with-gateway.sh}"
dev() { node -p "require('$client/package.json').devDependencies['$1']"; }
grpc_js=${GRPC_JS_VERSION:-$(dev @grpc/grpc-js)}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export npm_config_loglevel=error npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

# 1. The package, as the README builds it: `npm ci && npm pack` in clients/typescript.
mkdir "$tmp/checkout"
tar -C "$client" --exclude=node_modules --exclude=build --exclude=dist --exclude='*.tgz' -cf - . | tar -C "$tmp/checkout" -xf -
(cd "$tmp/checkout" && npm ci >/dev/null && npm pack --silent >"$tmp/packed")
tarball=$tmp/checkout/$(tail -n1 "$tmp/packed")
contents=$(tar -tzf "$tarball")
for f in package/dist/index.js package/dist/index.d.ts package/dist/service_config.json; do
  grep -qx "$f" <<<"$contents" || { echo "consumer: $f missing from $(basename "$tarball")" >&2; exit 1; }
done
if grep -q '^package/\(src\|test\|build\|node_modules\)/' <<<"$contents"; then
  echo "consumer: the tarball ships more than dist/" >&2; exit 1
fi

# 2. The application, as the README installs it.
mkdir "$tmp/app" && cd "$tmp/app"
npm init -y >/dev/null
npm install "$tarball" "@grpc/grpc-js@$grpc_js" >/dev/null
npm install --save-dev "typescript@$(dev typescript)" "@types/node@$(dev @types/node)" >/dev/null
copies=$(find node_modules -path '*/@grpc/grpc-js/package.json' | wc -l)
[ "$copies" -eq 1 ] || { echo "consumer: $copies copies of @grpc/grpc-js installed, want 1" >&2; exit 1; }
echo "consumer: $(basename "$tarball") with @grpc/grpc-js $(node -p "require('@grpc/grpc-js/package.json').version"), one copy"

cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "commonjs", "moduleResolution": "node", "strict": true,
    "types": ["node"], "outDir": "dist", "rootDir": "src"
  }
}
JSON
mkdir src
cat >src/main.ts <<'TS'
import { strict as assert } from "node:assert";

import { credentials } from "@grpc/grpc-js";
import { ErrorReason, LivenessClient, LivenessError, Verdict } from "@liveness-gateway/client";

async function vendorCalls(): Promise<number> {
  const response = await fetch(`${process.env.LIVENESS_SANDBOX_URL}/_sandbox/stats`);
  return ((await response.json()) as { total: number }).total;
}

async function main(): Promise<void> {
  // credentials from the application's own @grpc/grpc-js: one copy, so the client accepts them.
  const client = new LivenessClient(process.env.LIVENESS_TARGET!, { credentials: credentials.createInsecure() });
  try {
    const reply = await client.detect({ source: { $case: "livenessData", value: Buffer.from("SANDBOX:score=0.995") } });
    assert.equal(reply.score, 0.995);
    assert.equal(reply.verdict, Verdict.VERDICT_HACK);
    assert.ok(reply.requestId);
    console.log(`consumer: score=${reply.score} verdict=${Verdict[reply.verdict]} request=${reply.requestId}`);

    const before = await vendorCalls();
    try {
      await client.detect({ source: { $case: "livenessData", value: Buffer.from("SANDBOX:http=502") } });
      assert.fail("SANDBOX:http=502 succeeded");
    } catch (err) {
      assert.ok(err instanceof LivenessError, `want a LivenessError, got ${err}`);
      assert.equal(err.reason, ErrorReason.VENDOR_HTTP_ERROR);
      assert.ok(err.requestId);
      const calls = (await vendorCalls()) - before;
      assert.equal(calls, 3, "the gateway's three attempts, no resend by the client");
      console.log(`consumer: error reason=${ErrorReason[err.reason]} request=${err.requestId} vendor calls=${calls}`);
    }

    // A vendor rate limit: grpc-js resends after the gateway's advised delay (pushback), twice.
    const limited = await vendorCalls();
    const started = Date.now();
    try {
      await client.detect({ source: { $case: "livenessData", value: Buffer.from("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=0.2") } });
      assert.fail("SANDBOX:status=RATE_LIMIT_EXCEEDED succeeded");
    } catch (err) {
      assert.ok(err instanceof LivenessError, `want a LivenessError, got ${err}`);
      assert.equal(err.reason, ErrorReason.RATE_LIMIT_EXCEEDED, err.message);
      const elapsed = Date.now() - started;
      assert.equal((await vendorCalls()) - limited, 3, "three attempts, after the advised delays");
      assert.ok(elapsed >= 400, `resent sooner than advised: ${elapsed} ms`);
      console.log(`consumer: rate limited, resent after the advised delay: 3 vendor calls in ${elapsed} ms`);
    }
  } finally {
    client.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
TS
npx tsc -p tsconfig.json
node dist/main.js
