import type { Worker } from "node:worker_threads";
import { startWorkerThread } from "../../net/worker-thread.js";
import { EvidenceProviderFailure } from "../provider.js";
import type { DocumentAnswer, DocumentRequest } from "./json-document.js";

/*
 * The `json` provider parses documents and evaluates JSONPath in one long-lived worker thread, so that no query
 * can hold up the server's event loop: other callers, `/healthz` and the other providers keep being served while
 * the worker is busy. Requests queue and run one at a time. Evaluation has a deterministic step budget
 * (jsonpath-budget.ts); the limits below catch what the budget cannot count, by ending the worker (a fresh one
 * takes the next request).
 */

/**
 * Time the worker may spend evaluating one JSONPath, counted from the end of parsing: the `http` provider's default
 * timeout. The step budget ends the queries it counts within about two seconds even on a busy machine; this ends
 * the costs it does not see, such as deep comparisons of whole documents (`$[?$ == $]`).
 */
export const JSONPATH_TIME_LIMIT_MS = 5_000;

/**
 * Heap of the worker thread. A 1 MiB document of 130,000 small objects takes about 20 MiB parsed (with the plain
 * copy JSONPath evaluates). Exhausting the heap ends the worker, not the server: while evaluating, the query fails
 * with `jsonpath_limit_exceeded`; while parsing (possible only with a much larger `max_bytes`), as a provider
 * error.
 */
export const JSON_WORKER_HEAP_MB = 512;

export interface JobRequest {
  id: number;
  request: DocumentRequest;
}

export type WorkerReport = { id: number; kind: "evaluating" } | { id: number; kind: "answer"; answer: DocumentAnswer };

interface Job extends JobRequest {
  resolve(answer: DocumentAnswer): void;
  reject(error: Error): void;
  evaluationTimer?: NodeJS.Timeout;
}

export class JsonWorkerClient {
  private worker: Worker | undefined;
  private running: Job | undefined;
  private readonly waiting: Job[] = [];
  private lastId = 0;

  private readonly timeLimitMs: number;
  private readonly heapMb: number;

  constructor(limits: { timeLimitMs?: number; heapMb?: number } = {}) {
    this.timeLimitMs = limits.timeLimitMs ?? JSONPATH_TIME_LIMIT_MS;
    this.heapMb = limits.heapMb ?? JSON_WORKER_HEAP_MB;
  }

  /** Rejects (with `EvidenceProviderFailure`) only when the worker cannot start or dies, out of memory for example. */
  answer(request: DocumentRequest): Promise<DocumentAnswer> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: ++this.lastId, request, resolve, reject });
      this.startNext();
    });
  }

  private startNext(): void {
    if (this.running !== undefined) return;
    const job = this.waiting.shift();
    if (job === undefined) {
      this.worker?.unref(); // an idle worker does not keep the process alive
      return;
    }
    this.running = job;
    this.worker ??= this.spawn();
    this.worker.ref();
    this.worker.postMessage({ id: job.id, request: job.request } satisfies JobRequest);
  }

  private spawn(): Worker {
    const worker = startJsonWorker(this.heapMb);
    worker.on("message", (report: WorkerReport) => this.onReport(report));
    worker.on("error", (error) => this.onWorkerLost(worker, error));
    worker.on("exit", (code) => this.onWorkerLost(worker, new Error(`exited with code ${code}`)));
    return worker;
  }

  private onReport(report: WorkerReport): void {
    const job = this.running;
    if (job?.id !== report.id) return; // from a worker ended by a limit
    if (report.kind === "answer") {
      this.finish(job, () => job.resolve(report.answer));
    } else {
      job.evaluationTimer = setTimeout(() => this.onTimeLimit(job), this.timeLimitMs);
    }
  }

  private onTimeLimit(job: Job): void {
    void this.worker?.terminate();
    this.worker = undefined;
    this.finish(job, () => job.resolve(limitExceeded(job, `jsonpath evaluation exceeds ${this.timeLimitMs} ms`)));
  }

  private onWorkerLost(worker: Worker, error: Error): void {
    if (worker !== this.worker) return; // ended by a limit, or already reported
    this.worker = undefined;
    const job = this.running;
    if (job === undefined) return;
    const outOfMemory = (error as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY";
    if (outOfMemory && job.evaluationTimer !== undefined) {
      const message = `jsonpath evaluation exceeds the worker's ${this.heapMb} MiB heap`;
      this.finish(job, () => job.resolve(limitExceeded(job, message)));
    } else {
      this.finish(job, () => job.reject(new EvidenceProviderFailure(`json worker: ${error.message}`)));
    }
  }

  private finish(job: Job, settle: () => void): void {
    clearTimeout(job.evaluationTimer);
    this.running = undefined;
    settle();
    this.startNext();
  }
}

function limitExceeded(job: Job, message: string): DocumentAnswer {
  return { kind: "failure", code: "jsonpath_limit_exceeded", message, details: { jsonpath: job.request.jsonpath } };
}

/** Runs json-worker.js (json-worker.ts from sources) next to this module. */
function startJsonWorker(heapMb: number): Worker {
  return startWorkerThread(import.meta.url, "json-worker", { resourceLimits: { maxOldGenerationSizeMb: heapMb } });
}
