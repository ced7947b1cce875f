import { DecisionGateError, type ErrorDetails, type ErrorKind, InternalError } from "../core/errors.js";
import type { VerificationReport } from "../core/runpack/manifest.js";
import { startWorkerThread } from "../net/worker-thread.js";

/*
 * `verifyRunpackDirectory` in a worker thread of its own, so that verifying a long run (reading, parsing and
 * hashing megabytes, decoding every decision, checking the receipt chain) does not hold up the event loop: other
 * requests keep being served meanwhile. One worker per verification, ended when it answers.
 */

export interface VerifyJob {
  root: string;
  manifestPath: string;
  /** The key an attestation beside the manifest must be signed by (the server's runpack signing key). */
  attestationKey?: Uint8Array;
}

/** What the worker sends back: the report, or the error verification threw (rebuilt on this side). */
export type VerifyOutcome =
  | { kind: "report"; report: VerificationReport }
  | { kind: "error"; error: { message: string; kind?: ErrorKind; code?: string; details?: ErrorDetails } };

export function verifyRunpackDirectoryInWorker(
  root: string,
  manifestPath: string,
  attestationKey?: Uint8Array,
): Promise<VerificationReport> {
  return new Promise((resolve, reject) => {
    const workerData: VerifyJob = { root, manifestPath, attestationKey };
    const worker = startWorkerThread(import.meta.url, "verify-worker", { workerData });
    let settled = false;
    worker.once("message", (outcome: VerifyOutcome) => {
      settled = true;
      void worker.terminate();
      if (outcome.kind === "report") resolve(outcome.report);
      else reject(rebuiltError(outcome.error));
    });
    worker.once("error", (error) => {
      settled = true;
      reject(new InternalError(`runpack verification worker failed: ${error.message}`));
    });
    worker.once("exit", (code) => {
      if (!settled) reject(new InternalError(`runpack verification worker exited with code ${code}`));
    });
  });
}

/** The error as the caller would have seen it in this thread: typed errors by kind and code, file errors by code. */
function rebuiltError({ message, kind, code, details }: Extract<VerifyOutcome, { kind: "error" }>["error"]): Error {
  if (kind !== undefined && code !== undefined) return new DecisionGateError(kind, code, message, details);
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}
