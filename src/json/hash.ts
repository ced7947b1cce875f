import { hash } from "node:crypto";
import type { JsonValue } from "./value.js";
import { canonicalBytes } from "./write.js";

/** A type rather than an interface, so that a digest is itself a JSON value. */
export type HashDigest = {
  algorithm: "sha256";
  value: string;
};

/** Strings are hashed as UTF-8. One-shot `crypto.hash` (Node ≥ 20.12): about half the cost of a `Hash` object. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return hash("sha256", bytes, "hex");
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
