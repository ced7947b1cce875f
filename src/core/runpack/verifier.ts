import { z } from "zod";
import { hashBytes } from "../../json/hash.js";
import { parseJsonBytes } from "../../json/parse.js";
import { DecisionGateError } from "../errors.js";
import { anchorViolation } from "../run/anchors.js";
import { DecisionRecord, GateEvalRecord } from "../run/schema.js";
import { ScenarioSpec } from "../spec/schema.js";
import { decode } from "../wire/common.js";
import { rootHashOf } from "./builder.js";
import {
  MANIFEST_VERSION,
  MAX_RUNPACK_ARTIFACT_BYTES,
  type RunpackManifest,
  type RunpackReader,
  type VerificationReport,
} from "./manifest.js";

const DECISION_LOG_PATH = "artifacts/decisions.json";
const SPEC_PATH = "artifacts/scenario_spec.json";
const GATE_EVALS_PATH = "artifacts/gate_evals.json";

export interface VerifyOptions {
  /** The manifest's own path; with a listing reader, every other file must be named by the manifest. */
  manifestPath?: string;
}

/**
 * Verifies a runpack offline (evidence §8.5): every listed file's hash, the root hash, and the decision log.
 * Also rejects files the manifest does not account for, when the reader can list its files.
 */
export async function verifyRunpack(
  manifest: RunpackManifest,
  reader: RunpackReader,
  options: VerifyOptions = {},
): Promise<VerificationReport> {
  if (manifest.manifest_version !== MANIFEST_VERSION) {
    return report(0, [`unsupported manifest version: ${manifest.manifest_version}`]);
  }
  const errors: string[] = [];
  let checked = 0;
  for (const entry of manifest.integrity.file_hashes) {
    const bytes = await readOrRecord(
      reader,
      entry.path,
      errors,
      (message) => `artifact read failed for ${entry.path}: ${message}`,
    );
    if (bytes === undefined) continue;
    checked++;
    if (hashBytes(bytes).value !== entry.hash.value) errors.push(`hash mismatch for ${entry.path}`);
  }
  if (rootHashOf(manifest.integrity.file_hashes).value !== manifest.integrity.root_hash.value) {
    errors.push("root hash mismatch");
  }
  await checkDecisionLog(reader, errors);
  await checkAnchors(manifest, reader, errors);
  if (reader.list !== undefined) await checkUnlistedFiles(manifest, await reader.list(), options, errors);
  return report(checked, errors);
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
  try {
    return await reader.read(path, MAX_RUNPACK_ARTIFACT_BYTES);
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    errors.push(describe(error.message));
    return undefined;
  }
}

async function checkDecisionLog(reader: RunpackReader, errors: string[]): Promise<void> {
  const decisions = await readArtifact(reader, DECISION_LOG_PATH, z.array(DecisionRecord), "decision log", errors);
  if (decisions === undefined) return;
  const seen = new Set<string>();
  for (const decision of decisions) {
    if (seen.has(decision.trigger_id)) {
      errors.push(`duplicate decision for trigger ${decision.trigger_id}`);
      return;
    }
    seen.add(decision.trigger_id);
  }
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

async function checkUnlistedFiles(
  manifest: RunpackManifest,
  files: string[],
  options: VerifyOptions,
  errors: string[],
): Promise<void> {
  const known = new Set(manifest.integrity.file_hashes.map((entry) => entry.path));
  if (options.manifestPath !== undefined) known.add(options.manifestPath);
  for (const file of [...files].sort()) {
    if (!known.has(file)) errors.push(`unexpected file in runpack: ${file}`);
  }
}
