import { digestEquals, hashBytes } from "../../json/hash.js";
import type { JsonValue } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import { RunpackError } from "../errors.js";
import type { RunState } from "../run/schema.js";
import { specHash } from "../spec/hash.js";
import type { ScenarioSpec } from "../spec/schema.js";
import type { Timestamp } from "../wire/common.js";
import {
  type AnchorPolicy,
  type ArtifactKind,
  type ArtifactRecord,
  DEFAULT_MANIFEST_NAME,
  MANIFEST_VERSION,
  MAX_RUNPACK_ARTIFACT_BYTES,
  manifestBytes,
  RUN_LOG_ARTIFACTS,
  type RunLogKind,
  type RunpackManifest,
  type RunpackReader,
  type RunpackSecurity,
  type RunpackSink,
  rootHashOf,
  type VerificationReport,
} from "./manifest.js";
import { verifyRunpack } from "./verifier.js";

export const VERIFIER_REPORT_PATH = "artifacts/verifier_report.json";

export interface RunpackBuildOptions {
  generatedAt: Timestamp;
  manifestName?: string;
  anchorPolicy?: AnchorPolicy;
  security?: RunpackSecurity;
  /** Also verify the written runpack and add the report as the last artifact. */
  verification?: { reader: RunpackReader };
  /** Further JSON artifacts (kind `custom`) written after the run's logs, such as action receipts. */
  extraArtifacts?: ReadonlyArray<{ path: string; value: JsonValue }>;
  /**
   * Awaited after every `PAUSE_EVERY_BYTES` of encoded log records, so that a caller serving others (the server)
   * can let them in while a long run is encoded; the bytes written do not depend on it.
   */
  pause?: () => Promise<void>;
  /** Called after each artifact is encoded and after each is written, with how many of how many steps are done. */
  onProgress?: (done: number, total: number) => void;
}

/** About this much canonical JSON (a few milliseconds of encoding) is written between two pauses. */
export const PAUSE_EVERY_BYTES = 64 * 1024;

export interface RunpackBuildResult {
  manifest: RunpackManifest;
  /** The report written into the runpack (its `checked_files` excludes the report itself), or null. */
  report: VerificationReport | null;
}

/** The run's logs with their contents, in the fixed artifact order. */
function runArtifacts(spec: ScenarioSpec, state: RunState): Array<[string, ArtifactKind, JsonValue]> {
  const contents: Record<RunLogKind, JsonValue> = {
    scenario_spec: spec,
    trigger_log: state.triggers,
    gate_eval_log: state.gate_evals,
    decision_log: state.decisions,
    packet_log: state.packets,
    submission_log: state.submissions,
    tool_transcript: state.tool_calls,
  };
  return RUN_LOG_ARTIFACTS.map(({ path, kind }) => [path, kind, contents[kind]]);
}

/** Writes a deterministic runpack for `state`: canonical artifacts, then the canonical manifest. */
export async function buildRunpack(
  spec: ScenarioSpec,
  state: RunState,
  sink: RunpackSink,
  options: RunpackBuildOptions,
): Promise<RunpackBuildResult> {
  if (!digestEquals(specHash(spec), state.spec_hash)) {
    throw new RunpackError("spec_hash_mismatch", "hashing error: run state spec hash mismatch");
  }
  const manifestName = options.manifestName ?? DEFAULT_MANIFEST_NAME;
  const extras = (options.extraArtifacts ?? []).map(({ path, value }): [string, ArtifactKind, JsonValue] => [
    path,
    "custom",
    value,
  ]);
  // Every artifact is encoded and size-checked before the first write, so a refused export leaves nothing behind.
  const contents = [...runArtifacts(spec, state), ...extras];
  const steps = contents.length * 2;
  const encoded: Array<{ record: ArtifactRecord; bytes: Buffer }> = [];
  for (const [path, kind, value] of contents) {
    encoded.push(checkedArtifact(path, kind, await canonicalText(value, options.pause)));
    options.onProgress?.(encoded.length, steps);
  }
  const artifacts: ArtifactRecord[] = [];
  for (const { record, bytes } of encoded) {
    await sink.write(record.path, bytes);
    artifacts.push(record);
    options.onProgress?.(encoded.length + artifacts.length, steps);
  }
  let manifest = manifestFor(spec, state, options, artifacts);
  await writeManifest(sink, manifestName, manifest);
  if (options.verification === undefined) return { manifest, report: null };

  // The report covers the files just written; the unlisted-file check belongs to whoever verifies the directory.
  const { reader } = options.verification;
  const report = await verifyRunpack(manifest, { read: (path, maxBytes) => reader.read(path, maxBytes) });
  const reportArtifact = checkedArtifact(VERIFIER_REPORT_PATH, "verifier_report", canonicalJson(report));
  await sink.write(VERIFIER_REPORT_PATH, reportArtifact.bytes);
  artifacts.push(reportArtifact.record);
  manifest = manifestFor(spec, state, options, artifacts);
  await writeManifest(sink, manifestName, manifest);
  return { manifest, report };
}

/**
 * `canonicalJson(value)`, pausing between records when `value` is a list: a list's canonical text is its members'
 * texts, comma-separated, in brackets.
 */
async function canonicalText(value: JsonValue, pause: (() => Promise<void>) | undefined): Promise<string> {
  if (pause === undefined || !Array.isArray(value)) return canonicalJson(value);
  const members: string[] = [];
  let sincePause = 0;
  for (const member of value) {
    const text = canonicalJson(member);
    members.push(text);
    sincePause += text.length;
    if (sincePause >= PAUSE_EVERY_BYTES) {
      await pause();
      sincePause = 0;
    }
  }
  return `[${members.join(",")}]`;
}

/**
 * An artifact's bytes (its canonical JSON `text`) and manifest record. An artifact larger than the verifier reads
 * is refused here: this project's runs can outgrow the reference's 16 MiB state limit (D10), and a runpack that no
 * verifier accepts must not be written.
 */
function checkedArtifact(path: string, kind: ArtifactKind, text: string): { record: ArtifactRecord; bytes: Buffer } {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length > MAX_RUNPACK_ARTIFACT_BYTES) {
    throw new RunpackError(
      "artifact_too_large",
      `artifact too large: ${path} (${bytes.length} > ${MAX_RUNPACK_ARTIFACT_BYTES}); the run is too long for one runpack`,
    );
  }
  const record = {
    artifact_id: path,
    kind,
    path,
    content_type: "application/json",
    hash: hashBytes(bytes),
    required: true,
  };
  return { record, bytes };
}

async function writeManifest(sink: RunpackSink, name: string, manifest: RunpackManifest): Promise<void> {
  await sink.write(name, manifestBytes(manifest));
}

function manifestFor(
  spec: ScenarioSpec,
  state: RunState,
  options: RunpackBuildOptions,
  artifacts: ArtifactRecord[],
): RunpackManifest {
  const fileHashes = artifacts.map((artifact) => ({ path: artifact.path, hash: artifact.hash }));
  return {
    manifest_version: MANIFEST_VERSION,
    generated_at: options.generatedAt,
    scenario_id: spec.scenario_id,
    tenant_id: state.tenant_id,
    namespace_id: state.namespace_id,
    run_id: state.run_id,
    spec_hash: state.spec_hash,
    hash_algorithm: "sha256",
    verifier_mode: "offline_strict",
    anchor_policy: options.anchorPolicy?.providers === undefined ? undefined : options.anchorPolicy,
    security: options.security,
    integrity: { file_hashes: fileHashes, root_hash: rootHashOf(fileHashes) },
    artifacts: [...artifacts],
  };
}
