import type { EvidenceResult } from "../../core/run/schema.js";
import { hashBytes, hashCanonical } from "../../json/hash.js";
import { canonicalJson } from "../../json/write.js";
import { EvidenceProviderFailure } from "../provider.js";
import { verifyStrict } from "./ed25519.js";

/**
 * What a provider's answers must carry, from configuration only (`[trust] default_policy` or a provider's
 * `trust`): `audit` accepts answers as they are; `require_signature` demands an Ed25519 signature by one of
 * the configured keys over the canonical JSON of the evidence hash. Evidence never chooses its own policy.
 */
export type SignaturePolicy = { kind: "audit" } | { kind: "require_signature"; keys: ReadonlyMap<string, Uint8Array> };

export const AUDIT: SignaturePolicy = { kind: "audit" };

/** Applies the policy (evidence §3.3 step 4, in its order); a failure is a provider failure. */
export function applySignaturePolicy(result: EvidenceResult, policy: SignaturePolicy): EvidenceResult {
  if (policy.kind === "audit") return result;
  const signature = result.signature;
  if (signature === null) fail("missing evidence signature");
  if (signature.scheme !== "ed25519") fail("unsupported signature scheme");
  const key = policy.keys.get(signature.key_id);
  if (key === undefined) fail("signature key not authorized");
  const evidenceHash = verifiedEvidenceHash(result);
  if (signature.signature.length !== 64) fail("invalid signature bytes");
  const message = Buffer.from(canonicalJson(evidenceHash), "utf8");
  if (!verifyStrict(signature.signature, message, key)) fail("signature verification failed");
  return { ...result, evidence_hash: evidenceHash };
}

/** The hash of the value, which must agree with any hash the provider supplied. */
function verifiedEvidenceHash(result: EvidenceResult) {
  const value = result.value;
  if (value === null) fail("missing evidence hash for signature verification");
  const computed = value.kind === "bytes" ? hashBytes(value.value) : hashCanonical(value.value);
  const supplied = result.evidence_hash;
  if (supplied !== null && (supplied.algorithm !== computed.algorithm || supplied.value !== computed.value)) {
    fail("evidence hash mismatch");
  }
  return computed;
}

function fail(message: string): never {
  throw new EvidenceProviderFailure(message, { integrity: true });
}
