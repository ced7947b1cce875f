import { createPublicKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { rawPublicKey } from "../core/runpack/signature.js";
import { isValidPublicKey } from "../evidence/trust/ed25519.js";
import { loadPublicKey } from "../evidence/trust/keys.js";

/** An Ed25519 public key for `--verify-key`: SPKI PEM, or what trusted key files hold (32 raw bytes or base64 text). */
export async function loadVerifyKey(path: string): Promise<Uint8Array> {
  const bytes = await readFile(path).catch(() => {
    throw new Error(`unable to read public key: ${path}`);
  });
  const isPem = bytes.length !== 32 && bytes.toString("latin1").trimStart().startsWith("-----BEGIN");
  return isPem ? publicKeyFromPem(path, bytes) : loadPublicKey(path);
}

/** Only an SPKI public key: node would also derive one from a private key, which a verifier should never hold. */
function publicKeyFromPem(path: string, pem: Buffer): Uint8Array {
  try {
    const key = pem.includes("-----BEGIN PUBLIC KEY-----") ? rawPublicKey(createPublicKey(pem)) : undefined;
    if (key !== undefined && isValidPublicKey(key)) return key;
  } catch {
    // Not a usable PEM public key: reported below.
  }
  throw new Error(`invalid ed25519 public key: ${path}`);
}
