import { parentPort, workerData } from "node:worker_threads";
import { DecisionGateError, InternalError } from "../core/errors.js";
import { verifyRunpackDirectory } from "./filesystem.js";
import type { VerifyJob, VerifyOutcome } from "./verify-in-worker.js";

/* The worker thread of verify-in-worker.ts: verifies one runpack directory and reports the outcome. */

const port = parentPort;
if (port === null) throw new InternalError("verify-worker.ts runs as a worker thread");
port.postMessage(await outcomeOf(workerData as VerifyJob));

async function outcomeOf({ root, manifestPath, attestationKey }: VerifyJob): Promise<VerifyOutcome> {
  try {
    return { kind: "report", report: await verifyRunpackDirectory(root, manifestPath, { attestationKey }) };
  } catch (error) {
    if (error instanceof DecisionGateError) {
      const { kind, code, message, details } = error;
      return { kind: "error", error: { kind, code, message, details } };
    }
    const code = (error as NodeJS.ErrnoException).code;
    return { kind: "error", error: { message: error instanceof Error ? error.message : String(error), code } };
  }
}
