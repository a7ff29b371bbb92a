// Scores one liveness-data vector with the gateway:
//   npm run example -- 'SANDBOX:score=0.995'      (LIVENESS_TARGET defaults to localhost:50051)
import { credentials } from "@grpc/grpc-js";

import { LivenessClient, LivenessError, Reason, Verdict } from "../src";

async function main(): Promise<number> {
  const target = process.env.LIVENESS_TARGET ?? "localhost:50051";
  const data = Buffer.from(process.argv[2] ?? "SANDBOX:score=0.995");
  const client = new LivenessClient(target, credentials.createInsecure());
  try {
    const reply = await client.detect({ livenessData: data }, { deadline: Date.now() + 15_000 });
    console.log(`score=${reply.score} verdict=${Verdict[reply.verdict]} threshold=${reply.threshold}`);
    return 0;
  } catch (err) {
    const e = LivenessError.from(err);
    if (e.reason === Reason.RATE_LIMIT_EXCEEDED) {
      console.log(`rate limited: retry in ${e.retryDelayMs} ms`);
    } else {
      console.log(`failed: code=${e.code} reason=${e.reason} metadata=${JSON.stringify(e.errorMetadata)}`);
    }
    return 1;
  } finally {
    client.close();
  }
}

main().then((code) => process.exit(code));
