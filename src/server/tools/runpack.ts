import { join, resolve } from "node:path";
import { setImmediate } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { RECEIPTS_ARTIFACT_PATH } from "../../actions/receipts.js";
import { AccessDeniedError, NotFoundError, RunpackError } from "../../core/errors.js";
import { attestationTime } from "../../core/runpack/attestation.js";
import { buildRunpack } from "../../core/runpack/builder.js";
import { DEFAULT_MANIFEST_NAME } from "../../core/runpack/manifest.js";
import { writeManifestSignature } from "../../core/runpack/signature.js";
import { NamespaceId, nullable, TenantId, Timestamp } from "../../core/wire/common.js";
import { writeRunpackAttestation } from "../../runpack/attestation.js";
import { FilesystemRunpack, isWithin } from "../../runpack/filesystem.js";
import { verifyRunpackDirectoryInWorker } from "../../runpack/verify-in-worker.js";
import type { CallContext } from "../context.js";
import type { TenantReach } from "../policy/principals.js";
import type { ServerServices } from "../services.js";
import { defineTool } from "./tool.js";

const ExportArgs = z.object({
  scenario_id: z.string(),
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  run_id: z.string(),
  output_dir: nullable(z.string()),
  manifest_name: nullable(z.string()),
  generated_at: Timestamp,
  include_verification: z.boolean(),
});
const VerifyArgs = z.object({ runpack_dir: z.string(), manifest_path: z.string() });

const runpackExport = defineTool({
  name: "runpack_export",
  args: ExportArgs,
  argumentSize: "small",
  // Writes over the files of an earlier export in the same directory.
  annotations: { destructiveHint: true },
  async run(request, { services, runtimes, context }) {
    const plane = await runtimes.admitted(context, request.tenant_id, request.namespace_id, request.scenario_id);
    const state = await services.runs.load(request);
    if (state === undefined) throw new NotFoundError("run_not_found", "run not found");
    const { dir, named } = exportDirectory(services, context, request);
    const extraArtifacts = services.actions.includeInRunpack
      ? [{ path: RECEIPTS_ARTIFACT_PATH, value: await services.runs.loadReceipts(request) }]
      : [];
    const runpack = new FilesystemRunpack(dir);
    const manifestName = request.manifest_name ?? DEFAULT_MANIFEST_NAME;
    const { signer, attestation } = services.runpacks;
    // Checked before anything is written: an export that cannot be attested writes nothing.
    const attest = attestation &&
      signer && { signer, verifierId: attestation.verifierId, timeVerified: attestationTime(request.generated_at) };
    const { manifest, report } = await withFilesystemErrors(async () => {
      const built = await buildRunpack(plane.spec, state, runpack, {
        generatedAt: request.generated_at,
        manifestName,
        anchorPolicy: services.runpacks.anchorPolicy,
        security: services.runpacks.security,
        verification: request.include_verification ? { reader: runpack } : undefined,
        extraArtifacts,
        pause: () => setImmediate(),
      });
      if (signer !== undefined) await writeManifestSignature(runpack, manifestName, built.manifest, signer);
      if (attest) {
        await writeRunpackAttestation(runpack, built.manifest, { ...attest, manifestName, runStatus: state.status });
      }
      return built;
    });
    return named ? { manifest, report } : { manifest, report, storage_uri: pathToFileURL(`${dir}/`).href };
  },
});

const runpackVerify = defineTool({
  name: "runpack_verify",
  args: VerifyArgs,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run({ runpack_dir, manifest_path }, { services, context }) {
    const dir = confinedPath(services, context, runpack_dir, services.scopes.tenantsReachedBy(context));
    const report = await withFilesystemErrors(() =>
      verifyRunpackDirectoryInWorker(dir, manifest_path, services.runpacks.signer?.publicKey),
    );
    return { report, status: report.status };
  },
});

export const RUNPACK_TOOLS = [runpackExport, runpackVerify];

/** The named `output_dir`, or a per-run directory under the runpack root. */
function exportDirectory(
  services: ServerServices,
  context: CallContext,
  request: { tenant_id: bigint; namespace_id: bigint; scenario_id: string; run_id: string; output_dir: string | null },
) {
  if (request.output_dir !== null) {
    const tenants = services.scopes.isolatesTenants ? [request.tenant_id] : "all";
    return { dir: confinedPath(services, context, request.output_dir, tenants), named: true };
  }
  const ids = [request.scenario_id, request.run_id];
  if (ids.some((id) => id === "" || id === "." || id === ".." || /[/\\]/.test(id))) {
    throw new RunpackError("invalid_storage_key", "scenario_id and run_id must be usable as path segments");
  }
  const segments = ["tenant", `${request.tenant_id}`, "namespace", `${request.namespace_id}`, "scenario"];
  return { dir: join(services.runpacks.root, ...segments, request.scenario_id, "run", request.run_id), named: false };
}

/**
 * D9: local callers may name any path (relative to the server's working directory, as with the reference);
 * remote callers' paths resolve against the runpack root and may not leave it. D13: unless they reach every
 * tenant, remote callers' paths must also lie in the directory of one of `tenants` (`<root>/tenant/<tenant_id>`).
 */
function confinedPath(services: ServerServices, context: CallContext, path: string, tenants: TenantReach): string {
  if (context.auth.method === "local") return resolve(path);
  const root = services.runpacks.root;
  const target = resolve(root, path);
  if (!isWithin(root, target)) throw new RunpackError("path_outside_root", "runpack path escapes the runpack root");
  if (tenants !== "all" && !tenants.some((tenant) => isWithin(join(root, "tenant", `${tenant}`), target))) {
    throw new AccessDeniedError("unauthorized", "runpack path outside the caller's tenant directories");
  }
  return target;
}

async function withFilesystemErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof Error && "code" in error && typeof error.code === "string" && error.code.startsWith("E")) {
      throw new RunpackError("runpack_io", `runpack io error: ${error.code}`);
    }
    throw error;
  }
}
