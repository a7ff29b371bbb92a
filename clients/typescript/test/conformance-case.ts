// One case of clients/conformance.json on a new client with its default settings, in a process
// of its own (see conformance.test.ts): prints the outcome as JSON.
//   node build/test/conformance-case.js '<case as JSON>'      (LIVENESS_TARGET set)
import {
  type AntiHackParams,
  Code,
  type DetectParams,
  ErrorReason,
  LivenessClient,
  LivenessError,
  type UploadParams,
} from "../src";

export interface Case {
  name: string;
  rpc: "Upload" | "Detect" | "AntiHack";
  request: Record<string, string>;
  code: keyof typeof Code;
  reason: string;
  score?: number;
  vendor_calls: number;
  min_elapsed_s: number;
  same_liveness_data_id_as?: string;
}

// {"liveness_data": "..."} -> { source: { $case: "livenessData", value: Buffer } }, and
// "request_id" -> requestId. {} has no source, which the request types refuse at compile time,
// hence the casts below: the case is about the gateway's answer to it.
function request(fields: Record<string, string>): object {
  const { request_id: requestId, ...sources } = fields;
  const keyed = requestId === undefined ? {} : { requestId };
  const entries = Object.entries(sources);
  if (entries.length > 1) throw new Error("a case has at most one source");
  if (entries.length === 0) return keyed;
  const [field, value] = entries[0];
  const $case = field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return { ...keyed, source: { $case, value: field === "liveness_data" ? Buffer.from(value) : value } };
}

function call(client: LivenessClient, c: Case) {
  const r = request(c.request);
  switch (c.rpc) {
    case "Upload":
      return client.upload(r as UploadParams);
    case "Detect":
      return client.detect(r as DetectParams);
    case "AntiHack":
      return client.antiHack(r as AntiHackParams);
  }
}

async function main(c: Case): Promise<void> {
  const client = new LivenessClient(process.env.LIVENESS_TARGET!);
  const started = performance.now();
  try {
    const reply = await call(client, c);
    const elapsedMs = performance.now() - started;
    const score = "score" in reply ? reply.score : undefined;
    const livenessDataId = "livenessDataId" in reply ? reply.livenessDataId : "";
    const { requestId, idempotencyKey } = reply;
    const out = { code: Code.OK, reason: ErrorReason.ERROR_REASON_UNSPECIFIED, domain: "", requestId, idempotencyKey, livenessDataId, score, message: "OK", elapsedMs };
    process.stdout.write(JSON.stringify(out));
  } catch (err) {
    const elapsedMs = performance.now() - started;
    if (!(err instanceof LivenessError)) throw err;
    const { code, reason, domain, requestId, idempotencyKey, message } = err;
    process.stdout.write(JSON.stringify({ code, reason, domain, requestId, idempotencyKey, message, elapsedMs }));
  } finally {
    client.close();
  }
}

if (require.main === module) {
  main(JSON.parse(process.argv[2]) as Case).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
