// The request types admit exactly one source: checked by tsc when the tests are built (each
// "ts-expect-error" line below fails the build if its line compiles), then run so node --test counts it.
import assert from "node:assert/strict";
import { test } from "node:test";

import type { AntiHackParams, DetectParams, UploadParams } from "../src";

const bytes = Buffer.from("x");

test("a request names exactly one source", () => {
  const ok: DetectParams[] = [
    { source: { $case: "livenessData", value: bytes } },
    { source: { $case: "livenessDataUrl", value: "https://x/y" } },
    { source: { $case: "livenessDataId", value: "id" } },
  ];
  const anti: AntiHackParams = { source: { $case: "imageId", value: "i" }, returnImage: true };
  const upload: UploadParams = { source: { $case: "livenessDataUrl", value: "https://x/y" } };

  // @ts-expect-error no source
  const none: DetectParams = {};
  // @ts-expect-error two sources: the oneof's fields are not properties of the request
  const two: DetectParams = { source: { $case: "livenessData", value: bytes }, livenessDataUrl: "https://x/y" };
  // @ts-expect-error a source with another source's value type
  const mixed: DetectParams = { source: { $case: "livenessDataUrl", value: bytes } };
  // @ts-expect-error a source Detect does not take
  const wrong: DetectParams = { source: { $case: "imageId", value: "i" } };
  // @ts-expect-error Upload takes no id
  const uploadById: UploadParams = { source: { $case: "livenessDataId", value: "id" } };
  // The idempotency key is optional on every request, and a string.
  const keyed: UploadParams = { ...upload, requestId: "0f8fad5b-d9cb-469f-a165-70867728950e" };
  // @ts-expect-error a key is a string
  const numbered: DetectParams = { ...ok[0], requestId: 4711 };

  assert.equal(ok.length + [anti, upload, none, two, mixed, wrong, uploadById, keyed, numbered].length, 12);
});
