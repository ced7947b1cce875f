import type { Logger } from "pino";
import type { ReceiptLog } from "../actions/receipt-log.js";
import type { DispatchPolicy } from "../core/dispatch/policy.js";
import type { EvidenceSource } from "../core/run/evidence.js";
import type { ReceiptIssuer } from "../core/run/receipts.js";
import type { RunStateStore } from "../core/run/store.js";
import type { AnchorPolicy, RunpackSecurity } from "../core/runpack/manifest.js";
import type { ManifestSigner } from "../core/runpack/signature.js";
import type { EvidenceRuntime } from "../evidence/registry.js";
import type { ScenarioRegistry, SchemaRegistry } from "../store/registries.js";
import type { AuditLog } from "./audit.js";
import type { DocsCatalog } from "./docs/catalog.js";
import type { ServerMetrics } from "./metrics.js";
import type { FeedbackPolicy } from "./policy/feedback.js";
import type { PrincipalDirectory } from "./policy/principals.js";
import type { RegistryAcl } from "./policy/registry-acl.js";
import type { ScopeGuard } from "./policy/scope.js";

/** Everything the tools work with, assembled once from configuration by the server app. */
export interface ServerServices {
  audit: AuditLog;
  metrics: ServerMetrics;
  log: Logger;
  /** The evidence source decisions use: the trust pipeline, instrumented. */
  decisionEvidence: EvidenceSource;
  /** The runtime action layer (`[runtime_actions]`): null issuer when disabled. */
  actions: { issuer: ReceiptIssuer | null; log: ReceiptLog | null; includeInRunpack: boolean };
  runs: RunStateStore;
  scenarios: ScenarioRegistry;
  schemas: SchemaRegistry;
  evidence: EvidenceRuntime;
  dispatchPolicy: DispatchPolicy;
  /** Tenant, namespace and authority checks of every tenant-scoped tool. */
  scopes: ScopeGuard;
  principals: PrincipalDirectory;
  feedback: FeedbackPolicy;
  runpacks: {
    /** Where runpacks go when no `output_dir` is named, and the root remote callers are confined to. */
    root: string;
    security: RunpackSecurity;
    anchorPolicy: AnchorPolicy | undefined;
    /** Signs every manifest `runpack_export` writes (`[runpack_storage] signing_key`). */
    signer: ManifestSigner | undefined;
    /** Set by `[runpack_storage] attestation`: exports also write an attestation signed by `signer`. */
    attestation: { verifierId: string } | undefined;
  };
  schemaRegistry: {
    maxSchemaBytes: number;
    maxEntries: number | null;
    acl: RegistryAcl;
    /** `signing_keys` by their configured path (the `key_id` of a signature). */
    signingKeys: ReadonlyMap<string, Uint8Array>;
  };
  providerDiscovery: { allowlist: readonly string[]; denylist: readonly string[]; maxResponseBytes: number };
  docs: { catalog: DocsCatalog; maxSections: number; search: boolean; resources: boolean } | null;
}
