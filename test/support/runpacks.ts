import type { KeyObject } from "node:crypto";
import { ed25519Signer, writeManifestSignature } from "../../src/core/runpack/signature.js";
import { FilesystemRunpack, readManifest } from "../../src/runpack/filesystem.js";

/** Signs the manifest of the runpack in `dir` with an Ed25519 private key, writing `<manifest>.sig.json` beside it. */
export async function signRunpackManifest(
  dir: string,
  privateKey: KeyObject,
  manifestName = "manifest.json",
): Promise<void> {
  const runpack = new FilesystemRunpack(dir);
  await writeManifestSignature(
    runpack,
    manifestName,
    await readManifest(runpack, manifestName),
    ed25519Signer(privateKey),
  );
}
