import { createHash } from "node:crypto";
import type { JsonValue } from "./value.js";
import { canonicalBytes } from "./write.js";

export interface HashDigest {
  algorithm: "sha256";
  value: string;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function hashBytes(bytes: Uint8Array): HashDigest {
  return { algorithm: "sha256", value: sha256Hex(bytes) };
}

/** SHA-256 of the canonical JSON of `value`; `limit` caps the canonical size in bytes. */
export function hashCanonical(value: JsonValue, limit?: number): HashDigest {
  return hashBytes(canonicalBytes(value, limit));
}

export function digestEquals(a: HashDigest, b: HashDigest): boolean {
  return a.algorithm === b.algorithm && a.value === b.value;
}
