import { z } from "zod";
import { RECEIPTS_ARTIFACT_PATH } from "../../actions/receipts.js";
import { DecisionGateError } from "../../core/errors.js";
import {
  DecisionRecord,
  GateEvalRecord,
  PacketRecord,
  SubmissionRecord,
  TriggerRecord,
} from "../../core/run/schema.js";
import {
  type AttestationInspection,
  attestationFileName,
  inspectAttestation,
  MAX_ATTESTATION_FILE_BYTES,
  runStatusOf,
} from "../../core/runpack/attestation.js";
import {
  MAX_RUNPACK_ARTIFACT_BYTES,
  type RunpackManifest,
  type VerificationReport,
} from "../../core/runpack/manifest.js";
import {
  MAX_SIGNATURE_FILE_BYTES,
  ManifestSignature,
  manifestSignatureProblem,
  signatureFileName,
} from "../../core/runpack/signature.js";
import { ScenarioSpec } from "../../core/spec/schema.js";
import { AnyJson, decode } from "../../core/wire/common.js";
import { verifyStrict } from "../../evidence/trust/ed25519.js";
import { parseJsonBytes } from "../../json/parse.js";
import { type DirectoryVerifyOptions, FilesystemRunpack, readManifest, verifyRunpackDirectory } from "../filesystem.js";

/**
 * What the manifest's signature file proves. `pinned` means it was checked against the key the reader supplied;
 * otherwise only against the key the file names, which shows the manifest is intact but not who signed it.
 */
export type SignatureStatus =
  | { state: "unsigned" }
  | { state: "valid"; keyId: string; pinned: boolean }
  | { state: "invalid"; keyId: string | null; problem: string };

/** The run's logs as recorded in the runpack; a log the manifest does not list, or that cannot be read, is absent. */
export interface RunpackLogs {
  spec?: ScenarioSpec;
  triggers?: TriggerRecord[];
  gateEvals?: GateEvalRecord[];
  decisions?: DecisionRecord[];
  packets?: PacketRecord[];
  submissions?: SubmissionRecord[];
  receipts?: z.output<typeof AnyJson>[];
}

export interface LoadedRunpack {
  manifestPath: string;
  /** Null when the manifest itself cannot be read or decoded; the verification then says why. */
  manifest: RunpackManifest | null;
  verification: VerificationReport;
  signature: SignatureStatus;
  /** What the attestation beside the manifest says and whether it holds; null when there is none. */
  attestation: AttestationInspection | null;
  logs: RunpackLogs;
  /** Listed logs that could not be shown, each with the reason. */
  unreadable: string[];
}

const LOGS = {
  spec: { path: "artifacts/scenario_spec.json", schema: ScenarioSpec },
  triggers: { path: "artifacts/triggers.json", schema: z.array(TriggerRecord) },
  gateEvals: { path: "artifacts/gate_evals.json", schema: z.array(GateEvalRecord) },
  decisions: { path: "artifacts/decisions.json", schema: z.array(DecisionRecord) },
  packets: { path: "artifacts/packets.json", schema: z.array(PacketRecord) },
  submissions: { path: "artifacts/submissions.json", schema: z.array(SubmissionRecord) },
  receipts: { path: RECEIPTS_ARTIFACT_PATH, schema: z.array(AnyJson) },
} as const satisfies Record<keyof RunpackLogs, { path: string; schema: z.ZodType }>;

/**
 * Verifies a runpack directory and reads its logs for a report. A runpack that fails verification is still read
 * as far as it can be, so the report can show what the files claim next to why they are not to be trusted.
 */
export async function loadRunpackForReport(
  root: string,
  manifestPath: string,
  options: Pick<DirectoryVerifyOptions, "verifyKey" | "onProgress"> = {},
): Promise<LoadedRunpack> {
  const runpack = new FilesystemRunpack(root);
  let manifest: RunpackManifest;
  try {
    manifest = await readManifest(runpack, manifestPath);
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    const verification = { status: "fail" as const, checked_files: 0n, errors: [error.message] };
    const signature = { state: "unsigned" } as const;
    return { manifestPath, manifest: null, verification, signature, attestation: null, logs: {}, unreadable: [] };
  }
  const verification = await verifyRunpackDirectory(root, manifestPath, options);
  const signature = await signatureStatus(runpack, manifestPath, manifest, options.verifyKey);
  const logs: RunpackLogs = {};
  const unreadable: string[] = [];
  const listed = new Set(manifest.artifacts.map((artifact) => artifact.path));
  for (const [name, { path, schema }] of Object.entries(LOGS)) {
    if (!listed.has(path)) continue;
    try {
      const value = decode(
        schema as z.ZodType,
        parseJsonBytes(await runpack.read(path, MAX_RUNPACK_ARTIFACT_BYTES)),
        path,
      );
      (logs as Record<string, unknown>)[name] = value;
    } catch (error) {
      if (!(error instanceof DecisionGateError)) throw error;
      unreadable.push(`${path}: ${error.message}`);
    }
  }
  const attestation = await attestationOf(runpack, manifestPath, manifest, options.verifyKey, logs.decisions);
  return { manifestPath, manifest, verification, signature, attestation, logs, unreadable };
}

/** The attestation checked as the verifier checks it; a file that cannot be read is among the verification's errors. */
async function attestationOf(
  runpack: FilesystemRunpack,
  manifestPath: string,
  manifest: RunpackManifest,
  pinnedKey: Uint8Array | undefined,
  decisions: DecisionRecord[] | undefined,
): Promise<AttestationInspection | null> {
  const path = attestationFileName(manifestPath);
  if (!(await runpack.list()).includes(path)) return null;
  let file: Uint8Array;
  try {
    file = await runpack.read(path, MAX_ATTESTATION_FILE_BYTES);
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    return null;
  }
  const runStatus = decisions === undefined ? undefined : runStatusOf(decisions);
  return inspectAttestation(manifest, file, { manifestName: manifestPath, pinnedKey, verify: verifyStrict, runStatus });
}

async function signatureStatus(
  runpack: FilesystemRunpack,
  manifestPath: string,
  manifest: RunpackManifest,
  pinnedKey: Uint8Array | undefined,
): Promise<SignatureStatus> {
  let file: Uint8Array;
  try {
    file = await runpack.read(signatureFileName(manifestPath), MAX_SIGNATURE_FILE_BYTES);
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    return pinnedKey === undefined
      ? { state: "unsigned" }
      : { state: "invalid", keyId: null, problem: "manifest signature missing" };
  }
  const keyId = declaredKeyId(file);
  const publicKey = pinnedKey ?? (keyId === null ? undefined : Buffer.from(keyId, "base64"));
  if (publicKey === undefined || publicKey.length !== 32) {
    return { state: "invalid", keyId, problem: "manifest signature invalid" };
  }
  const problem = manifestSignatureProblem(manifest, file, { publicKey, verify: verifyStrict });
  if (problem !== null) return { state: "invalid", keyId, problem };
  return { state: "valid", keyId: Buffer.from(publicKey).toString("base64"), pinned: pinnedKey !== undefined };
}

function declaredKeyId(file: Uint8Array): string | null {
  try {
    return decode(ManifestSignature, parseJsonBytes(file), "manifest signature").key_id;
  } catch (error) {
    if (error instanceof DecisionGateError) return null;
    throw error;
  }
}
