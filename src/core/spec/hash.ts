import { type HashDigest, hashCanonical } from "../../json/hash.js";
import type { ScenarioSpec } from "./schema.js";

/** `spec_hash`: SHA-256 of the canonical JSON of the typed (re-serialized) spec. */
export function specHash(spec: ScenarioSpec): HashDigest {
  return hashCanonical(spec);
}
