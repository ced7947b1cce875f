import { z } from "zod";
import { hashBytes } from "../../json/hash.js";
import { parseJsonBytes } from "../../json/parse.js";
import { DecisionGateError } from "../errors.js";
import { DecisionRecord } from "../run/schema.js";
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
  const bytes = await readOrRecord(
    reader,
    DECISION_LOG_PATH,
    errors,
    (message) => `decision log read failed: ${message}`,
  );
  if (bytes === undefined) return;
  let decisions: DecisionRecord[];
  try {
    decisions = decode(z.array(DecisionRecord), parseJsonBytes(bytes), "decision log");
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    errors.push(`invalid decision log: ${error.message}`);
    return;
  }
  const seen = new Set<string>();
  for (const decision of decisions) {
    if (seen.has(decision.trigger_id)) {
      errors.push(`duplicate decision for trigger ${decision.trigger_id}`);
      return;
    }
    seen.add(decision.trigger_id);
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
