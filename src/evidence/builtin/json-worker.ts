import { parentPort } from "node:worker_threads";
import { InternalError } from "../../core/errors.js";
import { answerDocument } from "./json-document.js";
import type { JobRequest, WorkerReport } from "./json-worker-client.js";

/* The `json` provider's worker thread: answers one document request at a time (json-worker-client.ts). */

const port = parentPort;
if (port === null) throw new InternalError("json-worker.ts runs as a worker thread");
const report = (message: WorkerReport) => port.postMessage(message);
port.on("message", ({ id, request }: JobRequest) => {
  const answer = answerDocument(request, () => report({ id, kind: "evaluating" }));
  report({ id, kind: "answer", answer });
});
