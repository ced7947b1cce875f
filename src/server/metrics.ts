import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EvidenceContext, EvidenceSource } from "../core/run/evidence.js";
import type { RunChange, RunKey, RunStateStore } from "../core/run/store.js";
import type { EvidenceQuery } from "../core/spec/schema.js";

/** Latency buckets in seconds: the reference's declared buckets (1 ms … 30 s). */
const BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Methods and tools counted under their own names. Requests are counted before authentication, so a label never
 * takes a caller-chosen value: any other method or tool is `other`, and the number of series stays fixed.
 */
const KNOWN_METHODS = new Set(["tools/list", "tools/call", "resources/list", "resources/read"]);

/**
 * Prometheus metrics (D11), served at `GET /metrics`. Labels carry known method and tool names, outcomes, error
 * codes, decision kinds and provider ids only: never tenant, run or request data.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly knownTools: ReadonlySet<string>;
  private readonly requests = new Counter({
    name: "decision_gate_requests_total",
    help: "Handled requests by dialect, method, tool, outcome and JSON-RPC error code.",
    labelNames: ["dialect", "method", "tool", "outcome", "code"],
    registers: [this.registry],
  });
  private readonly toolDuration = new Histogram({
    name: "decision_gate_tool_duration_seconds",
    help: "Time spent in each tool call.",
    labelNames: ["tool", "outcome"],
    buckets: BUCKETS,
    registers: [this.registry],
  });
  private readonly decisions = new Counter({
    name: "decision_gate_decisions_total",
    help: "Decisions made, by outcome kind.",
    labelNames: ["kind"],
    registers: [this.registry],
  });
  private readonly evidenceQueries = new Counter({
    name: "decision_gate_evidence_queries_total",
    help: "Evidence queries by provider and outcome (ok, error, failure).",
    labelNames: ["provider", "outcome"],
    registers: [this.registry],
  });
  private readonly commits = new Histogram({
    name: "decision_gate_store_commit_duration_seconds",
    help: "Run-state store commits (including run creation), by outcome.",
    labelNames: ["operation", "outcome"],
    buckets: BUCKETS,
    registers: [this.registry],
  });
  private readonly runsActive = new Gauge({
    name: "decision_gate_runs_active",
    help: "Runs started by this process that have not completed or failed since.",
    registers: [this.registry],
  });

  /** `knownTools`: the tools counted under their own names (the tool table's). */
  constructor(knownTools: Iterable<string>) {
    this.knownTools = new Set(knownTools);
  }

  request(labels: { dialect: string; method: string | null; tool: string | null; code: number | null }): void {
    this.requests.inc({
      dialect: labels.dialect,
      method: labels.method === null ? "invalid" : knownOrOther(KNOWN_METHODS, labels.method),
      tool: labels.tool === null ? "" : knownOrOther(this.knownTools, labels.tool),
      outcome: labels.code === null ? "ok" : "error",
      code: labels.code === null ? "" : String(labels.code),
    });
  }

  /** Times a tool call. */
  async timeTool<T>(tool: string, work: () => Promise<T>): Promise<T> {
    const end = this.toolDuration.startTimer({ tool });
    try {
      const result = await work();
      end({ outcome: "ok" });
      return result;
    } catch (error) {
      end({ outcome: "error" });
      throw error;
    }
  }

  decision(kind: string): void {
    this.decisions.inc({ kind });
    if (kind === "complete" || kind === "fail") this.runsActive.dec();
  }

  /** An evidence source that counts every query by provider and outcome. */
  countingEvidence(source: EvidenceSource): EvidenceSource {
    return {
      query: async (query: EvidenceQuery, context: EvidenceContext) => {
        try {
          const result = await source.query(query, context);
          this.evidenceQueries.inc({ provider: query.provider_id, outcome: result.error === null ? "ok" : "error" });
          return result;
        } catch (error) {
          this.evidenceQueries.inc({ provider: query.provider_id, outcome: "failure" });
          throw error;
        }
      },
      validateProviders: (spec) => source.validateProviders(spec),
    };
  }

  /** A run-state store whose creates and commits are timed, and whose new decisions are counted. */
  countingStore(store: RunStateStore): RunStateStore {
    const timed = async <T>(operation: string, work: () => Promise<T>) => {
      const end = this.commits.startTimer({ operation });
      try {
        const result = await work();
        end({ outcome: "ok" });
        return result;
      } catch (error) {
        end({ outcome: "error" });
        throw error;
      }
    };
    return {
      create: (state, receipts) =>
        timed("create", async () => {
          await store.create(state, receipts);
          this.runsActive.inc();
          for (const decision of state.decisions) this.decision(decision.outcome.kind);
        }),
      commit: (key: RunKey, version: number, change: RunChange) =>
        timed("commit", async () => {
          await store.commit(key, version, change);
          for (const decision of change.appended.decisions) this.decision(decision.outcome.kind);
        }),
      open: (key, lookahead) => store.open(key, lookahead),
      exclusive: (key, work) => store.exclusive(key, work),
      load: (key) => store.load(key),
      loadReceipts: (key) => store.loadReceipts(key),
      ready: () => store.ready(),
    };
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function knownOrOther(known: ReadonlySet<string>, name: string): string {
  return known.has(name) ? name : "other";
}
