// Scores one liveness-data vector with the gateway:
//   npm run example -- 'SANDBOX:score=0.995'      (LIVENESS_TARGET defaults to localhost:50051)
import { credentials } from "@grpc/grpc-js";

import { ErrorReason, LivenessClient, LivenessError, Verdict } from "../src";

async function main(): Promise<number> {
  const target = process.env.LIVENESS_TARGET ?? "localhost:50051";
  const data = Buffer.from(process.argv[2] ?? "SANDBOX:score=0.995");
  const client = new LivenessClient(target, { credentials: credentials.createInsecure() });
  try {
    const reply = await client.detect({ source: { $case: "livenessData", value: data } });
    console.log(`score=${reply.score} verdict=${Verdict[reply.verdict]} threshold=${reply.threshold} request=${reply.requestId}`);
    return 0;
  } catch (err) {
    const e = LivenessError.from(err);
    console.log(`failed: code=${e.code} reason=${ErrorReason[e.reason]} request=${e.requestId} metadata=${JSON.stringify(e.errorMetadata)}`);
    return 1;
  } finally {
    client.close();
  }
}

main().then((code) => process.exit(code));
