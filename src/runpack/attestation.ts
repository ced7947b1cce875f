import { type AttestationOptions, attestationEnvelope, attestationFileName } from "../core/runpack/attestation.js";
import type { RunpackManifest, RunpackSink } from "../core/runpack/manifest.js";
import type { ManifestSigner } from "../core/runpack/signature.js";

/** Writes the signed attestation of `manifest` beside it; returns the file's path relative to the runpack. */
export async function writeRunpackAttestation(
  sink: RunpackSink,
  manifest: RunpackManifest,
  options: AttestationOptions & { signer: ManifestSigner },
): Promise<string> {
  const path = attestationFileName(options.manifestName);
  await sink.write(path, attestationEnvelope(manifest, options, options.signer));
  return path;
}
