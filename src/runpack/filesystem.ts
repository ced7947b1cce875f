import { constants } from "node:fs";
import { lstat, mkdir, open, readdir, realpath, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, posix, relative, sep } from "node:path";
import { checkReceiptChain } from "../actions/runpack.js";
import { InvalidInputError, JsonParseError, RunpackError } from "../core/errors.js";
import {
  RunpackManifest,
  type RunpackReader,
  type RunpackSink,
  type VerificationReport,
} from "../core/runpack/manifest.js";
import { verifyRunpack } from "../core/runpack/verifier.js";
import { decode } from "../core/wire/common.js";
import { verifyStrict } from "../evidence/trust/ed25519.js";
import { parseJsonBytes } from "../json/parse.js";

const MAX_PATH_COMPONENT_BYTES = 255;
const MAX_PATH_BYTES = 4096;
/** Refuses a symlink as the final component when opening (POSIX); the resolved path has none unless raced. */
const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * A runpack directory on disk: the sink the builder writes to and the reader the verifier reads from.
 * No path may lead out of the root: not through `..`, and not through a symlink at any component (D9).
 */
export class FilesystemRunpack implements RunpackSink, RunpackReader {
  constructor(readonly root: string) {}

  /** Writes a regular file; symlinked directories must stay inside the root, and a symlinked file is refused. */
  async write(path: string, bytes: Uint8Array): Promise<void> {
    const relativePath = checkedRelativePath(path);
    await mkdir(dirname(join(this.root, relativePath)), { recursive: true });
    const parent = await this.resolveInsideRoot(dirname(relativePath));
    const target = join(parent, posix.basename(relativePath));
    const existing = await lstat(target).catch(() => undefined);
    if (existing?.isSymbolicLink()) {
      throw new RunpackError("artifact_path_symlink", "artifact error: refusing to write through a symlink");
    }
    await writeFile(target, bytes, { flag: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | NO_FOLLOW });
  }

  async read(path: string, maxBytes: number): Promise<Uint8Array> {
    const target = await this.resolveInsideRoot(checkedRelativePath(path));
    const file = await open(target, constants.O_RDONLY | NO_FOLLOW).catch(() => {
      throw new RunpackError("artifact_unreadable", "artifact error: unable to read artifact metadata");
    });
    try {
      const stats = await file.stat();
      if (!stats.isFile()) throw new RunpackError("artifact_unreadable", "artifact error: not a regular file");
      if (stats.size > maxBytes) throw tooLarge(path, stats.size, maxBytes);
      const bytes = await file.readFile();
      if (bytes.length > maxBytes) throw tooLarge(path, bytes.length, maxBytes);
      return bytes;
    } finally {
      await file.close();
    }
  }

  /** Every entry under the root that is not a directory, as relative POSIX paths; symlinks are listed, not followed. */
  async list(): Promise<string[]> {
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else files.push(relative(this.root, path).split(sep).join(posix.sep));
      }
    };
    await walk(this.root);
    return files;
  }

  /** The real path of `path` under the root; every component, the last included, must resolve inside the root. */
  private async resolveInsideRoot(path: string): Promise<string> {
    let root: string;
    let target: string;
    try {
      root = await realpath(this.root);
      target = await realpath(join(root, path));
    } catch {
      throw new RunpackError("artifact_unreadable", "artifact error: unable to read artifact metadata");
    }
    if (!isWithin(root, target)) throw pathEscape();
    return target;
  }
}

/** Whether `target` is `dir` or lies below it, compared lexically (symlinks are not resolved). */
export function isWithin(dir: string, target: string): boolean {
  const inside = relative(dir, target);
  return !(inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside));
}

function pathEscape(): RunpackError {
  return new RunpackError("artifact_path_escape", "artifact error: artifact path escapes runpack root");
}

function tooLarge(path: string, actual: number, max: number): RunpackError {
  return new RunpackError("artifact_too_large", `artifact too large: ${path} (${actual} > ${max})`);
}

/** Artifact paths are relative POSIX paths without `..` or empty components. */
function checkedRelativePath(path: string): string {
  if (path.startsWith("/") || isAbsolute(path) || path.includes("\\")) {
    throw new RunpackError("artifact_path_absolute", "artifact error: absolute artifact path not allowed");
  }
  const components = path.split("/");
  if (components.some((part) => part === ".." || part === "." || part === "")) throw pathEscape();
  if (
    Buffer.byteLength(path) > MAX_PATH_BYTES ||
    components.some((part) => Buffer.byteLength(part) > MAX_PATH_COMPONENT_BYTES)
  ) {
    throw new RunpackError("artifact_path_too_long", "artifact error: artifact path too long");
  }
  return path;
}

/** Reads and decodes a manifest file. */
export async function readManifest(runpack: FilesystemRunpack, manifestPath: string): Promise<RunpackManifest> {
  const bytes = await runpack.read(manifestPath, Number.MAX_SAFE_INTEGER);
  try {
    return decode(RunpackManifest, parseJsonBytes(bytes), "manifest");
  } catch (error) {
    if (error instanceof InvalidInputError) throw new RunpackError("manifest_invalid", error.message, error.details);
    if (error instanceof JsonParseError)
      throw new RunpackError("manifest_invalid", `invalid manifest: ${error.message}`);
    throw error;
  }
}

export interface DirectoryVerifyOptions {
  /** A raw 32-byte Ed25519 public key: the manifest must carry a valid signature by it, and so must an attestation. */
  verifyKey?: Uint8Array;
  /** Without `verifyKey`, the key an attestation must be signed by (the server's own signing key). */
  attestationKey?: Uint8Array;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Verifies a runpack directory, including that it holds no file the manifest does not account for, and the
 * attestation beside the manifest when there is one.
 */
export async function verifyRunpackDirectory(
  root: string,
  manifestPath = "manifest.json",
  options: DirectoryVerifyOptions = {},
): Promise<VerificationReport> {
  const runpack = new FilesystemRunpack(root);
  const manifest = await readManifest(runpack, manifestPath);
  const verifyKey =
    options.verifyKey === undefined ? undefined : { publicKey: options.verifyKey, verify: verifyStrict };
  return verifyRunpack(manifest, runpack, {
    manifestPath,
    verifyKey,
    attestation: { verify: verifyStrict, pinnedKey: options.verifyKey ?? options.attestationKey },
    onProgress: options.onProgress,
    extraChecks: [checkReceiptChain],
  });
}
