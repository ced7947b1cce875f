import { createPublicKey, type KeyObject, sign } from "node:crypto";
import { z } from "zod";
import { sha256Hex } from "../../json/hash.js";
import { parseJsonBytes } from "../../json/parse.js";
import { canonicalJson } from "../../json/write.js";
import { DecisionGateError, RunpackError } from "../errors.js";
import { decode } from "../wire/common.js";
import { manifestBytes, type RunpackManifest, type RunpackSink } from "./manifest.js";

/*
 * Manifest signatures (D9). The signature lives in `<manifest name>.sig.json` beside the manifest, so the
 * manifest stays byte-identical to the reference format. It is an Ed25519 signature over the canonical JSON of
 * the manifest (the manifest file's bytes as the builder writes them).
 */

/** Largest signature file the verifier reads; a real one is about 250 bytes. */
export const MAX_SIGNATURE_FILE_BYTES = 65_536;

export const ManifestSignature = z.object({
  algorithm: z.literal("ed25519"),
  /** Standard base64 of the 32-byte public key. */
  key_id: z.string(),
  /** Hex SHA-256 of the canonical manifest bytes. */
  manifest_sha256: z.string(),
  /** Standard base64 of the 64-byte signature. */
  signature: z.string(),
});
export type ManifestSignature = z.output<typeof ManifestSignature>;

/** Signs manifest bytes; `publicKey` is the raw 32-byte key that verifies what `sign` produces. */
export interface ManifestSigner {
  publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** Strict Ed25519 verification, injected so the core does not depend on the evidence layer. */
export type SignatureVerifier = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;

/** The key a verification requires the manifest to be signed by, and how to check a signature against it. */
export interface ManifestVerifyKey {
  publicKey: Uint8Array;
  verify: SignatureVerifier;
}

export function signatureFileName(manifestPath: string): string {
  return `${manifestPath}.sig.json`;
}

/** A signer for an Ed25519 private key object (from a PKCS#8 PEM file or `generateKeyPairSync("ed25519")`). */
export function ed25519Signer(privateKey: KeyObject): ManifestSigner {
  if (privateKey.type !== "private" || privateKey.asymmetricKeyType !== "ed25519") {
    throw new RunpackError("signing_key_invalid", "signing key must be an Ed25519 private key");
  }
  return {
    publicKey: rawPublicKey(createPublicKey(privateKey)),
    sign: (message) => sign(null, message, privateKey),
  };
}

/** The raw 32 bytes of an Ed25519 public key object. */
export function rawPublicKey(publicKey: KeyObject): Uint8Array {
  if (publicKey.type !== "public" || publicKey.asymmetricKeyType !== "ed25519") {
    throw new RunpackError("verify_key_invalid", "key is not an Ed25519 public key");
  }
  // An Ed25519 SubjectPublicKeyInfo ends with the raw 32-byte key.
  return new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(-32));
}

export function signManifest(manifest: RunpackManifest, signer: ManifestSigner): ManifestSignature {
  const message = manifestBytes(manifest);
  return {
    algorithm: "ed25519",
    key_id: Buffer.from(signer.publicKey).toString("base64"),
    manifest_sha256: sha256Hex(message),
    signature: Buffer.from(signer.sign(message)).toString("base64"),
  };
}

/** Signs the manifest and writes the signature file beside it. */
export async function writeManifestSignature(
  sink: RunpackSink,
  manifestPath: string,
  manifest: RunpackManifest,
  signer: ManifestSigner,
): Promise<ManifestSignature> {
  const signature = signManifest(manifest, signer);
  await sink.write(signatureFileName(manifestPath), Buffer.from(canonicalJson(signature)));
  return signature;
}

/**
 * Why the signature file does not prove that `key` signed `manifest`, or null when it does. The check is made
 * against the decoded manifest the verifier goes on to use, so nothing can change between the two.
 */
export function manifestSignatureProblem(
  manifest: RunpackManifest,
  signatureFile: Uint8Array,
  key: ManifestVerifyKey,
): string | null {
  const signature = decodeSignatureFile(signatureFile);
  if (signature === undefined) return "manifest signature invalid";
  if (signature.key_id !== Buffer.from(key.publicKey).toString("base64")) return "manifest signature key mismatch";
  const message = manifestBytes(manifest);
  if (signature.manifest_sha256 !== sha256Hex(message)) return "manifest signature does not cover this manifest";
  const signatureBytes = decodeCanonicalBase64(signature.signature);
  if (signatureBytes === undefined || !key.verify(signatureBytes, message, key.publicKey)) {
    return "manifest signature invalid";
  }
  return null;
}

function decodeSignatureFile(bytes: Uint8Array): ManifestSignature | undefined {
  try {
    return decode(ManifestSignature, parseJsonBytes(bytes), "manifest signature");
  } catch (error) {
    if (error instanceof DecisionGateError) return undefined;
    throw error;
  }
}

/** Standard padded base64 only: decoding and re-encoding must give back the same text. */
export function decodeCanonicalBase64(text: string): Uint8Array | undefined {
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? new Uint8Array(bytes) : undefined;
}
