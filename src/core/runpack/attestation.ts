import { z } from "zod";
import { sha256Hex } from "../../json/hash.js";
import { parseJsonBytes } from "../../json/parse.js";
import type { JsonObject } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import { DecisionGateError, InvalidInputError } from "../errors.js";
import type { DecisionRecord, RunStatus } from "../run/schema.js";
import { decode, type Timestamp } from "../wire/common.js";
import { manifestBytes, type RunpackManifest } from "./manifest.js";
import { decodeCanonicalBase64, type ManifestSigner, type SignatureVerifier } from "./signature.js";

/*
 * Runpack attestations: an in-toto Statement v1 about the manifest, whose predicate is a SLSA Verification Summary
 * (VSA v1), in a DSSE envelope signed with the runpack signing key. The envelope lives beside the manifest as
 * `<manifest name>.intoto.dsse.json`, outside the manifest's artifacts, so the runpack's bytes do not change.
 * Pure: encoding, signing with an injected signer and checking; the files are read and written elsewhere.
 */

export const DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const VSA_PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1";
/** A predicate extension field (VSA parsing rules: extension field names are URIs): the manifest's root hash. */
export const ROOT_HASH_FIELD = "decision-gate://runpack/root_hash";
/** `verifier.id` when `[runpack_storage] attestation_verifier_id` is not set. */
export const DEFAULT_VERIFIER_ID = "decision-gate://server";
/** `verifiedLevels` of a PASSED attestation (custom SLSA results must not start with `SLSA_`). */
export const COMPLETED_RUN_LEVEL = "DECISION_GATE_RUN_COMPLETED";
/** Largest attestation file the verifier reads; a real one is about 2 KB. */
export const MAX_ATTESTATION_FILE_BYTES = 65_536;
/** The last millisecond of year 9999, the end of RFC 3339's four-digit years. */
const MAX_RFC3339_MILLIS = 253_402_300_799_999n;

export function attestationFileName(manifestPath: string): string {
  return `${manifestPath}.intoto.dsse.json`;
}

const DigestSet = z.record(z.string(), z.string());

export const DsseEnvelope = z.object({
  payload: z.string(),
  payloadType: z.string(),
  signatures: z.array(z.object({ keyid: z.string().optional(), sig: z.string() })).min(1),
});
export type DsseEnvelope = z.output<typeof DsseEnvelope>;

export const VerificationSummaryStatement = z.object({
  _type: z.literal(STATEMENT_TYPE),
  subject: z.array(z.object({ name: z.string(), digest: DigestSet })).min(1),
  predicateType: z.literal(VSA_PREDICATE_TYPE),
  predicate: z.object({
    verifier: z.object({ id: z.string() }),
    timeVerified: z.string(),
    resourceUri: z.string(),
    policy: z.object({ uri: z.string(), digest: DigestSet }),
    verificationResult: z.enum(["PASSED", "FAILED"]),
    verifiedLevels: z.array(z.string()),
    [ROOT_HASH_FIELD]: DigestSet,
  }),
});
export type VerificationSummaryStatement = z.output<typeof VerificationSummaryStatement>;

/** What an attestation asserts, for people (the report). */
export interface AttestationSummary {
  verifierId: string;
  timeVerified: string;
  verificationResult: "PASSED" | "FAILED";
  resourceUri: string;
}

export type AttestationSignatureStatus =
  | { state: "valid"; keyId: string; pinned: boolean }
  | { state: "invalid"; keyId: string | null; problem: string };

export interface AttestationInspection {
  /** Null when the envelope or its statement cannot be decoded. */
  summary: AttestationSummary | null;
  signature: AttestationSignatureStatus;
  /** Every reason the attestation does not hold for this manifest; empty when it does. */
  problems: string[];
}

export interface AttestationOptions {
  /** The manifest's name, the statement's subject. */
  manifestName: string;
  verifierId: string;
  /** The export request's time, from `attestationTime`. */
  timeVerified: string;
  runStatus: RunStatus;
}

/** DSSE's pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`, lengths in bytes. */
export function preAuthenticationEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** A run as a URI: `decision-gate://tenant/<t>/namespace/<n>/scenario/<scenario>/run/<run>`. */
export function runUri(manifest: RunpackManifest): string {
  return `${scenarioUri(manifest)}/run/${encodeURIComponent(manifest.run_id)}`;
}

/** The scenario a run was decided against: `decision-gate://tenant/<t>/namespace/<n>/scenario/<scenario>`. */
export function scenarioUri(manifest: RunpackManifest): string {
  const { tenant_id, namespace_id, scenario_id } = manifest;
  return `decision-gate://tenant/${tenant_id}/namespace/${namespace_id}/scenario/${encodeURIComponent(scenario_id)}`;
}

/** `timeVerified` for an export time: RFC 3339 in UTC. A logical time names no moment, so it cannot be attested. */
export function attestationTime(time: Timestamp): string {
  if (time.kind !== "unix_millis") {
    throw new InvalidInputError("generated_at: an attestation needs a unix_millis time for timeVerified, not logical");
  }
  if (time.value < 0n || time.value > MAX_RFC3339_MILLIS) {
    throw new InvalidInputError("generated_at: out of range for an attestation's timeVerified (years 1970 to 9999)");
  }
  return new Date(Number(time.value)).toISOString();
}

/** A run's status as its decision log shows it: its last decision completed or failed it, or it is active. */
export function runStatusOf(decisions: readonly DecisionRecord[]): RunStatus {
  const last = decisions.at(-1)?.outcome.kind;
  return last === "complete" ? "completed" : last === "fail" ? "failed" : "active";
}

export function attestationStatement(manifest: RunpackManifest, options: AttestationOptions): JsonObject {
  const passed = options.runStatus === "completed";
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: options.manifestName, digest: { sha256: sha256Hex(manifestBytes(manifest)) } }],
    predicateType: VSA_PREDICATE_TYPE,
    predicate: {
      verifier: { id: options.verifierId },
      timeVerified: options.timeVerified,
      resourceUri: runUri(manifest),
      policy: { uri: scenarioUri(manifest), digest: { sha256: manifest.spec_hash.value } },
      verificationResult: passed ? "PASSED" : "FAILED",
      verifiedLevels: [passed ? COMPLETED_RUN_LEVEL : "FAILED"],
      [ROOT_HASH_FIELD]: { sha256: manifest.integrity.root_hash.value },
    },
  };
}

/** The attestation file's bytes: a DSSE envelope of the statement (canonical JSON), signed by `signer`. */
export function attestationEnvelope(
  manifest: RunpackManifest,
  options: AttestationOptions,
  signer: ManifestSigner,
): Buffer {
  const payload = Buffer.from(canonicalJson(attestationStatement(manifest, options)), "utf8");
  const signature = signer.sign(preAuthenticationEncoding(DSSE_PAYLOAD_TYPE, payload));
  const envelope: JsonObject = {
    payload: payload.toString("base64"),
    payloadType: DSSE_PAYLOAD_TYPE,
    signatures: [{ keyid: keyIdOf(signer.publicKey), sig: Buffer.from(signature).toString("base64") }],
  };
  return Buffer.from(canonicalJson(envelope), "utf8");
}

/** The DSSE `keyid`: standard base64 of the raw public key, as a manifest signature's `key_id`. */
function keyIdOf(publicKey: Uint8Array): string {
  return Buffer.from(publicKey).toString("base64");
}

/**
 * Checks an attestation file against the manifest it sits beside. The signature is checked against `pinnedKey`
 * when given, else against the key the envelope names (which shows the envelope is intact, not who signed it).
 * `runStatus` is the run's status as its decision log shows it, undefined when the log cannot be read.
 */
export function inspectAttestation(
  manifest: RunpackManifest,
  file: Uint8Array,
  options: {
    manifestName: string;
    pinnedKey?: Uint8Array;
    verify: SignatureVerifier;
    runStatus: RunStatus | undefined;
  },
): AttestationInspection {
  const envelope = decodeOrUndefined(DsseEnvelope, () => parseJsonBytes(file), "attestation envelope");
  if (envelope === undefined) {
    const problem = "attestation invalid: not a DSSE envelope";
    return { summary: null, signature: { state: "invalid", keyId: null, problem }, problems: [problem] };
  }
  const problems: string[] = [];
  if (envelope.payloadType !== DSSE_PAYLOAD_TYPE) problems.push(`attestation payloadType is not ${DSSE_PAYLOAD_TYPE}`);
  const payload = decodeCanonicalBase64(envelope.payload);
  const signature =
    payload === undefined
      ? { state: "invalid" as const, keyId: null, problem: "attestation invalid: payload is not base64" }
      : envelopeSignature(envelope, preAuthenticationEncoding(envelope.payloadType, payload), options);
  if (signature.state === "invalid") problems.push(signature.problem);
  const statement =
    payload === undefined
      ? undefined
      : decodeOrUndefined(VerificationSummaryStatement, () => parseJsonBytes(payload), "attestation statement");
  if (statement === undefined) {
    if (payload !== undefined) problems.push("attestation statement is not an in-toto VSA statement");
    return { summary: null, signature, problems };
  }
  problems.push(...statementProblems(manifest, statement, options));
  const { predicate } = statement;
  const summary = {
    verifierId: predicate.verifier.id,
    timeVerified: predicate.timeVerified,
    verificationResult: predicate.verificationResult,
    resourceUri: predicate.resourceUri,
  };
  return { summary, signature, problems };
}

function envelopeSignature(
  envelope: DsseEnvelope,
  message: Uint8Array,
  options: { pinnedKey?: Uint8Array; verify: SignatureVerifier },
): AttestationSignatureStatus {
  const verifies = (sig: string, key: Uint8Array) => {
    const bytes = decodeCanonicalBase64(sig);
    return bytes !== undefined && options.verify(bytes, message, key);
  };
  const pinned = options.pinnedKey;
  if (pinned !== undefined) {
    const keyId = keyIdOf(pinned);
    if (envelope.signatures.some(({ sig }) => verifies(sig, pinned))) {
      return { state: "valid", keyId, pinned: true };
    }
    const named = envelope.signatures.some((signature) => signature.keyid === keyId);
    return {
      state: "invalid",
      keyId: named ? keyId : (envelope.signatures[0]?.keyid ?? null),
      problem: named ? "attestation signature invalid" : "attestation signature key mismatch",
    };
  }
  const [first] = envelope.signatures;
  const keyId = first?.keyid ?? null;
  const declared = keyId === null ? undefined : decodeCanonicalBase64(keyId);
  if (first === undefined || declared === undefined || declared.length !== 32 || !verifies(first.sig, declared)) {
    return { state: "invalid", keyId, problem: "attestation signature invalid" };
  }
  return { state: "valid", keyId: keyIdOf(declared), pinned: false };
}

function statementProblems(
  manifest: RunpackManifest,
  statement: VerificationSummaryStatement,
  options: { manifestName: string; runStatus: RunStatus | undefined },
): string[] {
  const problems: string[] = [];
  const { subject, predicate } = statement;
  if (subject.length !== 1 || subject[0]?.name !== options.manifestName) {
    problems.push(`attestation subject is not ${options.manifestName}`);
  }
  if (subject.some((entry) => entry.digest.sha256 !== sha256Hex(manifestBytes(manifest)))) {
    problems.push("attestation subject digest does not match the manifest");
  }
  if (predicate.resourceUri !== runUri(manifest)) problems.push("attestation resourceUri does not name this run");
  if (predicate.policy.uri !== scenarioUri(manifest) || predicate.policy.digest.sha256 !== manifest.spec_hash.value) {
    problems.push("attestation policy does not match the manifest's scenario and spec_hash");
  }
  if (predicate[ROOT_HASH_FIELD].sha256 !== manifest.integrity.root_hash.value) {
    problems.push("attestation root hash does not match the manifest");
  }
  if (predicate.timeVerified !== timeOrNull(manifest.generated_at)) {
    problems.push("attestation timeVerified does not match the manifest's generated_at");
  }
  const expected = options.runStatus === "completed" ? "PASSED" : "FAILED";
  if (options.runStatus !== undefined && predicate.verificationResult !== expected) {
    problems.push(
      `attestation result ${predicate.verificationResult} does not match the run's status (${options.runStatus})`,
    );
  }
  return problems;
}

function timeOrNull(time: Timestamp): string | null {
  try {
    return attestationTime(time);
  } catch (error) {
    if (error instanceof DecisionGateError) return null;
    throw error;
  }
}

function decodeOrUndefined<T extends z.ZodType>(schema: T, read: () => unknown, label: string) {
  try {
    return decode(schema, read(), label);
  } catch (error) {
    if (error instanceof DecisionGateError) return undefined;
    throw error;
  }
}
