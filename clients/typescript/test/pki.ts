// The throwaway certificates and token scripts/test-tls.sh made for the TLS tests.
import { readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.LIVENESS_TEST_PKI;
if (!dir || !process.env.LIVENESS_TEST_TOKEN) {
  throw new Error("LIVENESS_TEST_PKI / LIVENESS_TEST_TOKEN are not set: run scripts/test-tls.sh");
}
const pem = (name: string) => readFileSync(join(dir, name));

/** The caller "checkout"'s bearer token, which may call Detect only. */
export const token = process.env.LIVENESS_TEST_TOKEN;
/** The CA that signed the gateway's and the clients' certificates. */
export const rootCerts = pem("ca.pem");
/** The caller "kyc"'s client certificate (may call every RPC). */
export const kyc = { certChain: pem("kyc.pem"), privateKey: pem("kyc.key") };
/** A client certificate from the same CA that no caller is registered under. */
export const stranger = { certChain: pem("stranger.pem"), privateKey: pem("stranger.key") };
