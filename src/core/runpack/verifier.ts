import { z } from "zod";
import { digestEquals, hashBytes } from "../../json/hash.js";
import { parseJsonBytes } from "../../json/parse.js";
import { DecisionGateError } from "../errors.js";
import { anchorViolation } from "../run/anchors.js";
import { DecisionRecord, GateEvalRecord, type RunStatus } from "../run/schema.js";
import { ScenarioSpec } from "../spec/schema.js";
import { decode } from "../wire/common.js";
import { attestationFileName, inspectAttestation, MAX_ATTESTATION_FILE_BYTES, runStatusOf } from "./attestation.js";
import {
  DEFAULT_MANIFEST_NAME,
  MANIFEST_VERSION,
  MAX_RUNPACK_ARTIFACT_BYTES,
  RUN_LOG_ARTIFACTS,
  type RunpackManifest,
  type RunpackReader,
  rootHashOf,
  type VerificationReport,
} from "./manifest.js";
import {
  MAX_SIGNATURE_FILE_BYTES,
  type ManifestVerifyKey,
  manifestSignatureProblem,
  type SignatureVerifier,
  signatureFileName,
} from "./signature.js";

const DECISION_LOG_PATH = "artifacts/decisions.json";
const SPEC_PATH = "artifacts/scenario_spec.json";
const GATE_EVALS_PATH = "artifacts/gate_evals.json";

export interface VerifyOptions {
  /**
   * The manifest's own path (default `manifest.json`); with a listing reader, every other file must be named by
   * the manifest or be its signature file.
   */
  manifestPath?: string;
  /** Require a signature file for the manifest, signed by this key (D9). Without it, a signature is not checked. */
  verifyKey?: ManifestVerifyKey;
  /**
   * Check the attestation beside the manifest (`<manifest>.intoto.dsse.json`) when there is one: its signature by
   * `pinnedKey`, or without one by the key the envelope names, and its statement against the manifest.
   */
  attestation?: { verify: SignatureVerifier; pinnedKey?: Uint8Array };
  /** Called after each listed file is hashed, with how many of how many are done. */
  onProgress?: (done: number, total: number) => void;
  /** Checks of artifacts this module does not know (e.g. action receipts); each appends its problems. */
  extraChecks?: ReadonlyArray<(manifest: RunpackManifest, reader: RunpackReader, errors: string[]) => Promise<void>>;
}

/**
 * Verifies a runpack offline (evidence §8.5): every listed file's hash, the root hash, the decision log and
 * recorded anchors, with the reference's messages in its order. Then, beyond the reference (D9): files the
 * manifest does not account for (when the reader can list its files), `artifacts[]` against `integrity`, the
 * required artifact set, duplicate paths, `spec_hash` against the spec artifact, the manifest signature and the
 * attestation.
 */
export async function verifyRunpack(
  manifest: RunpackManifest,
  reader: RunpackReader,
  options: VerifyOptions = {},
): Promise<VerificationReport> {
  const manifestPath = options.manifestPath ?? DEFAULT_MANIFEST_NAME;
  if (manifest.manifest_version !== MANIFEST_VERSION) {
    return report(0, [`unsupported manifest version: ${manifest.manifest_version}`]);
  }
  const errors: string[] = [];
  const { checked, hashMismatches } = await checkFileHashes(manifest, reader, errors, options.onProgress);
  if (rootHashOf(manifest.integrity.file_hashes).value !== manifest.integrity.root_hash.value) {
    errors.push("root hash mismatch");
  }
  const decisions = await checkDecisionLog(reader, errors);
  await checkAnchors(manifest, reader, errors);
  const files = await reader.list?.();
  if (files !== undefined) checkUnlistedFiles(manifest, files, options, errors);
  checkArtifactsMatchIntegrity(manifest, hashMismatches, errors);
  checkRequiredArtifacts(manifest, errors);
  checkDuplicatePaths(manifest, errors);
  await checkSpecHash(manifest, reader, errors);
  if (options.verifyKey !== undefined) {
    const signaturePath = signatureFileName(manifestPath);
    await checkSignature(manifest, reader, signaturePath, options.verifyKey, errors);
  }
  if (options.attestation !== undefined) {
    const status = decisions === undefined ? undefined : runStatusOf(decisions);
    await checkAttestation(
      manifest,
      reader,
      files,
      { ...options.attestation, manifestPath, runStatus: status },
      errors,
    );
  }
  for (const check of options.extraChecks ?? []) await check(manifest, reader, errors);
  return report(checked, errors);
}

/** Reads and hashes every `file_hashes` entry; returns how many files were read and whose hash did not match. */
async function checkFileHashes(
  manifest: RunpackManifest,
  reader: RunpackReader,
  errors: string[],
  onProgress: VerifyOptions["onProgress"],
) {
  let checked = 0;
  let done = 0;
  const hashMismatches = new Set<string>();
  for (const entry of manifest.integrity.file_hashes) {
    const bytes = await readOrRecord(
      reader,
      entry.path,
      errors,
      (message) => `artifact read failed for ${entry.path}: ${message}`,
    );
    onProgress?.(++done, manifest.integrity.file_hashes.length);
    if (bytes === undefined) continue;
    checked++;
    if (hashBytes(bytes).value !== entry.hash.value) {
      errors.push(`hash mismatch for ${entry.path}`);
      hashMismatches.add(entry.path);
    }
  }
  return { checked, hashMismatches };
}

function report(checked: number, errors: string[]): VerificationReport {
  return { checked_files: BigInt(checked), errors, status: errors.length === 0 ? "pass" : "fail" };
}

async function readOrRecord(
  reader: RunpackReader,
  path: string,
  errors: string[],
  describe: (message: string) => string,
): Promise<Uint8Array | undefined> {
  const bytes = await tryRead(reader, path, MAX_RUNPACK_ARTIFACT_BYTES);
  if (!(bytes instanceof DecisionGateError)) return bytes;
  errors.push(describe(bytes.message));
  return undefined;
}

/** The file's bytes, or the error that explains why it could not be read. */
async function tryRead(reader: RunpackReader, path: string, maxBytes: number): Promise<Uint8Array | DecisionGateError> {
  try {
    return await reader.read(path, maxBytes);
  } catch (error) {
    if (error instanceof DecisionGateError) return error;
    throw error;
  }
}

/** Checks the decision log and returns it, or undefined when it cannot be read. */
async function checkDecisionLog(reader: RunpackReader, errors: string[]): Promise<DecisionRecord[] | undefined> {
  const decisions = await readArtifact(reader, DECISION_LOG_PATH, z.array(DecisionRecord), "decision log", errors);
  if (decisions === undefined) return undefined;
  const seen = new Set<string>();
  for (const decision of decisions) {
    if (seen.has(decision.trigger_id)) {
      errors.push(`duplicate decision for trigger ${decision.trigger_id}`);
      break;
    }
    seen.add(decision.trigger_id);
  }
  return decisions;
}

/** Reads and decodes a JSON artifact, recording why when it cannot: `<what> read failed` or `invalid <what>`. */
async function readArtifact<T extends z.ZodType>(
  reader: RunpackReader,
  path: string,
  schema: T,
  what: string,
  errors: string[],
): Promise<z.output<T> | undefined> {
  const bytes = await readOrRecord(reader, path, errors, (message) => `${what} read failed: ${message}`);
  if (bytes === undefined) return undefined;
  try {
    return decode(schema, parseJsonBytes(bytes), what);
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    errors.push(`invalid ${what}: ${error.message}`);
    return undefined;
  }
}

/** Re-checks every recorded anchor against the manifest's anchor policy, offline (evidence §8.5 step 6). */
async function checkAnchors(manifest: RunpackManifest, reader: RunpackReader, errors: string[]): Promise<void> {
  const providers = manifest.anchor_policy?.providers;
  if (providers === undefined || providers.length === 0) return;
  const spec = await readArtifact(reader, SPEC_PATH, ScenarioSpec, "scenario spec", errors);
  const gateEvals = await readArtifact(reader, GATE_EVALS_PATH, z.array(GateEvalRecord), "gate eval log", errors);
  if (spec === undefined || gateEvals === undefined) return;
  const requirements = new Map(providers.map((entry) => [entry.provider_id, entry.requirement]));
  const providerOf = new Map(spec.conditions.map((condition) => [condition.condition_id, condition.query.provider_id]));
  for (const gateEval of gateEvals) {
    for (const record of gateEval.evidence) {
      if (record.result.error !== null) continue;
      const where = `(trigger ${gateEval.trigger_id}, stage ${gateEval.stage_id})`;
      const providerId = providerOf.get(record.condition_id);
      if (providerId === undefined) {
        errors.push(`condition ${record.condition_id} missing from scenario spec ${where}`);
        continue;
      }
      const requirement = requirements.get(providerId);
      const violation = requirement === undefined ? null : anchorViolation(record.result, requirement);
      if (violation !== null) errors.push(`anchor invalid for condition ${record.condition_id} ${where}: ${violation}`);
    }
  }
}

function checkUnlistedFiles(manifest: RunpackManifest, files: string[], options: VerifyOptions, errors: string[]) {
  const known = new Set(manifest.integrity.file_hashes.map((entry) => entry.path));
  if (options.manifestPath !== undefined) {
    known.add(options.manifestPath);
    known.add(signatureFileName(options.manifestPath));
    known.add(attestationFileName(options.manifestPath));
  }
  for (const file of [...files].sort()) {
    if (!known.has(file)) errors.push(`unexpected file in runpack: ${file}`);
  }
}

/**
 * `artifacts[]` must list exactly the `integrity.file_hashes` entries: same paths, same order, same hashes. A hash
 * difference on a path whose file already failed its hash check is not reported again (one fault, one message).
 */
function checkArtifactsMatchIntegrity(manifest: RunpackManifest, hashMismatches: Set<string>, errors: string[]): void {
  const { artifacts } = manifest;
  const fileHashes = manifest.integrity.file_hashes;
  const mismatched = new Set<string>();
  for (let index = 0; index < Math.max(artifacts.length, fileHashes.length); index++) {
    const artifact = artifacts[index];
    const entry = fileHashes[index];
    if (artifact !== undefined && entry !== undefined && artifact.path === entry.path) {
      if (!digestEquals(artifact.hash, entry.hash) && !hashMismatches.has(entry.path)) mismatched.add(entry.path);
      continue;
    }
    if (entry !== undefined) mismatched.add(entry.path);
    if (artifact !== undefined) mismatched.add(artifact.path);
  }
  for (const path of mismatched) errors.push(`artifact list does not match integrity for ${path}`);
}

/** The run logs, and every artifact marked required (the verifier report among them), must be hashed. */
function checkRequiredArtifacts(manifest: RunpackManifest, errors: string[]): void {
  const hashed = new Set(manifest.integrity.file_hashes.map((entry) => entry.path));
  const required = [
    ...RUN_LOG_ARTIFACTS.map((artifact) => artifact.path),
    ...manifest.artifacts.filter((artifact) => artifact.required).map((artifact) => artifact.path),
  ];
  for (const path of new Set(required)) {
    if (!hashed.has(path)) errors.push(`required artifact missing: ${path}`);
  }
}

function checkDuplicatePaths(manifest: RunpackManifest, errors: string[]): void {
  const duplicates = new Set<string>();
  for (const list of [manifest.integrity.file_hashes, manifest.artifacts]) {
    const seen = new Set<string>();
    for (const { path } of list) {
      if (seen.has(path)) duplicates.add(path);
      seen.add(path);
    }
  }
  for (const path of duplicates) errors.push(`duplicate artifact path: ${path}`);
}

/** The spec artifact is the canonical JSON of the spec, so its SHA-256 is `spec_hash`. */
async function checkSpecHash(manifest: RunpackManifest, reader: RunpackReader, errors: string[]): Promise<void> {
  const bytes = await tryRead(reader, SPEC_PATH, MAX_RUNPACK_ARTIFACT_BYTES);
  // An unreadable spec is already reported by the file hash check or the required artifact check.
  if (bytes instanceof DecisionGateError) return;
  if (!digestEquals(hashBytes(bytes), manifest.spec_hash)) errors.push(`spec_hash does not match ${SPEC_PATH}`);
}

async function checkSignature(
  manifest: RunpackManifest,
  reader: RunpackReader,
  signaturePath: string,
  key: ManifestVerifyKey,
  errors: string[],
): Promise<void> {
  const signatureFile = await tryRead(reader, signaturePath, MAX_SIGNATURE_FILE_BYTES);
  const problem =
    signatureFile instanceof DecisionGateError
      ? "manifest signature missing"
      : manifestSignatureProblem(manifest, signatureFile, key);
  if (problem !== null) errors.push(problem);
}

/**
 * An attestation is optional; when the directory holds one it must hold for this manifest. With a listing reader,
 * presence is what the listing shows, so a file that is there but cannot be read (a symlink out, too large) fails.
 */
async function checkAttestation(
  manifest: RunpackManifest,
  reader: RunpackReader,
  files: string[] | undefined,
  options: {
    manifestPath: string;
    verify: SignatureVerifier;
    pinnedKey?: Uint8Array;
    runStatus: RunStatus | undefined;
  },
  errors: string[],
): Promise<void> {
  const path = attestationFileName(options.manifestPath);
  if (files !== undefined && !files.includes(path)) return;
  const file = await tryRead(reader, path, MAX_ATTESTATION_FILE_BYTES);
  if (file instanceof DecisionGateError) {
    if (files !== undefined) errors.push(`attestation unreadable: ${file.message}`);
    return;
  }
  const inspection = inspectAttestation(manifest, file, { ...options, manifestName: options.manifestPath });
  errors.push(...inspection.problems);
}
