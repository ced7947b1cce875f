import { createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { RunpackError } from "../core/errors.js";
import { ed25519Signer, type ManifestSigner } from "../core/runpack/signature.js";

/** The manifest signer for an Ed25519 private key in PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it. */
export async function loadManifestSigner(path: string): Promise<ManifestSigner> {
  const pem = await readFile(path, "utf8").catch(() => {
    throw new RunpackError("signing_key_invalid", `unable to read signing key: ${path}`);
  });
  try {
    return ed25519Signer(createPrivateKey(pem));
  } catch {
    throw new RunpackError("signing_key_invalid", `signing key must be an Ed25519 private key in PKCS#8 PEM: ${path}`);
  }
}
