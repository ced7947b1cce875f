import { z } from "zod";
import { hashCanonical } from "../../json/hash.js";
import { canonicalJson } from "../../json/write.js";
import { HashDigest, NamespaceId, omittedWhenNull, TenantId, Timestamp } from "../wire/common.js";

/* Runpack manifest v1 and verifier report (evidence §8.1). */

export const MANIFEST_VERSION = "v1";
export const DEFAULT_MANIFEST_NAME = "manifest.json";
/** Largest artifact the verifier reads. */
export const MAX_RUNPACK_ARTIFACT_BYTES = 16_777_216;

export const ArtifactKind = z.enum([
  "scenario_spec",
  "trigger_log",
  "gate_eval_log",
  "decision_log",
  "packet_log",
  "dispatch_log",
  "evidence_log",
  "submission_log",
  "tool_transcript",
  "verifier_report",
  "custom",
]);
export type ArtifactKind = z.output<typeof ArtifactKind>;

/** The run logs every runpack holds, in the reference's fixed artifact order (evidence §8.2). */
export const RUN_LOG_ARTIFACTS = [
  { path: "artifacts/scenario_spec.json", kind: "scenario_spec" },
  { path: "artifacts/triggers.json", kind: "trigger_log" },
  { path: "artifacts/gate_evals.json", kind: "gate_eval_log" },
  { path: "artifacts/decisions.json", kind: "decision_log" },
  { path: "artifacts/packets.json", kind: "packet_log" },
  { path: "artifacts/submissions.json", kind: "submission_log" },
  { path: "artifacts/tool_calls.json", kind: "tool_transcript" },
] as const satisfies ReadonlyArray<{ path: string; kind: ArtifactKind }>;
export type RunLogKind = (typeof RUN_LOG_ARTIFACTS)[number]["kind"];

export const ArtifactRecord = z.object({
  artifact_id: z.string(),
  kind: ArtifactKind,
  path: z.string(),
  content_type: z.string(),
  hash: HashDigest,
  required: z.boolean(),
});
export type ArtifactRecord = z.output<typeof ArtifactRecord>;

export const FileHashEntry = z.object({ path: z.string(), hash: HashDigest });
export type FileHashEntry = z.output<typeof FileHashEntry>;

export const AnchorRequirement = z.object({ anchor_type: z.string(), required_fields: z.array(z.string()) });
export const AnchorPolicy = z.object({
  providers: z
    .array(z.object({ provider_id: z.string(), requirement: AnchorRequirement }))
    .optional()
    .transform((providers) => (providers === undefined || providers.length === 0 ? undefined : providers)),
});
export type AnchorPolicy = z.output<typeof AnchorPolicy>;

export const RunpackSecurity = z.object({
  dev_permissive: z.boolean(),
  namespace_authority: z.enum(["dg_registry", "assetcore_catalog"]),
});
export type RunpackSecurity = z.output<typeof RunpackSecurity>;

export const RunpackManifest = z.object({
  manifest_version: z.string(),
  generated_at: Timestamp,
  scenario_id: z.string(),
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  run_id: z.string(),
  spec_hash: HashDigest,
  hash_algorithm: z.literal("sha256"),
  verifier_mode: z.enum(["offline_strict", "offline_with_fetch"]),
  anchor_policy: omittedWhenNull(AnchorPolicy),
  security: omittedWhenNull(RunpackSecurity),
  integrity: z.object({ file_hashes: z.array(FileHashEntry), root_hash: HashDigest }),
  artifacts: z.array(ArtifactRecord),
});
export type RunpackManifest = z.output<typeof RunpackManifest>;

/** The manifest file's bytes: its canonical JSON, which is also exactly what a manifest signature covers. */
export function manifestBytes(manifest: RunpackManifest): Buffer {
  return Buffer.from(canonicalJson(manifest), "utf8");
}

/** The manifest's `integrity.root_hash`: the hash of the canonical `file_hashes` list. */
export function rootHashOf(fileHashes: FileHashEntry[]): HashDigest {
  return hashCanonical(fileHashes);
}

export const VerificationReport = z.object({
  status: z.enum(["pass", "fail"]),
  checked_files: z.bigint(),
  errors: z.array(z.string()),
});
export type VerificationReport = z.output<typeof VerificationReport>;

/** Where a runpack's files are written. Paths are relative POSIX paths such as `artifacts/triggers.json`. */
export interface RunpackSink {
  write(path: string, bytes: Uint8Array): Promise<void>;
}

/** Where a runpack's files are read from; `list` enables the check for files the manifest does not name. */
export interface RunpackReader {
  /** Reads a file; throws a `RunpackError` whose message explains why it could not (missing, too large, ...). */
  read(path: string, maxBytes: number): Promise<Uint8Array>;
  list?(): Promise<string[]>;
}
