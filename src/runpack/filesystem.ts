import { lstat, mkdir, readdir, readFile, realpath, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, posix, relative, sep } from "node:path";
import { DecisionGateError, InvalidInputError, JsonParseError, RunpackError } from "../core/errors.js";
import {
  RunpackManifest,
  type RunpackReader,
  type RunpackSink,
  type VerificationReport,
} from "../core/runpack/manifest.js";
import { verifyRunpack } from "../core/runpack/verifier.js";
import { decode } from "../core/wire/common.js";
import { parseJsonBytes } from "../json/parse.js";

const MAX_PATH_COMPONENT_BYTES = 255;
const MAX_PATH_BYTES = 4096;

/** A runpack directory on disk: the sink the builder writes to and the reader the verifier reads from. */
export class FilesystemRunpack implements RunpackSink, RunpackReader {
  constructor(readonly root: string) {}

  async write(path: string, bytes: Uint8Array): Promise<void> {
    const target = join(this.root, checkedRelativePath(path));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytes);
  }

  async read(path: string, maxBytes: number): Promise<Uint8Array> {
    const target = await this.resolveInsideRoot(checkedRelativePath(path));
    const stats = await lstat(target).catch(() => {
      throw new RunpackError("artifact_unreadable", "artifact error: unable to read artifact metadata");
    });
    if (stats.size > maxBytes) throw tooLarge(path, stats.size, maxBytes);
    const bytes = await readFile(target);
    if (bytes.length > maxBytes) throw tooLarge(path, bytes.length, maxBytes);
    return bytes;
  }

  /** Every regular file under the root, as relative POSIX paths. */
  async list(): Promise<string[]> {
    const entries = await readdir(this.root, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => !entry.isDirectory())
      .map((entry) => relative(this.root, join(entry.parentPath, entry.name)).split(sep).join(posix.sep));
  }

  /** The parent directory must resolve inside the root (symlinked directories cannot lead out of it). */
  private async resolveInsideRoot(path: string): Promise<string> {
    try {
      const root = await realpath(this.root);
      const parent = await realpath(join(root, dirname(path)));
      const inside = relative(root, parent);
      if (inside.startsWith("..") || isAbsolute(inside)) {
        throw new RunpackError("artifact_path_escape", "artifact error: artifact path escapes runpack root");
      }
      return join(parent, posix.basename(path));
    } catch (error) {
      if (error instanceof DecisionGateError) throw error;
      throw new RunpackError("artifact_unreadable", "artifact error: unable to read artifact metadata");
    }
  }
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
  if (components.some((part) => part === ".." || part === "." || part === "")) {
    throw new RunpackError("artifact_path_escape", "artifact error: artifact path escapes runpack root");
  }
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

/** Verifies a runpack directory, including that it holds no file the manifest does not account for. */
export async function verifyRunpackDirectory(
  root: string,
  manifestPath = "manifest.json",
): Promise<VerificationReport> {
  const runpack = new FilesystemRunpack(root);
  const manifest = await readManifest(runpack, manifestPath);
  return verifyRunpack(manifest, runpack, { manifestPath });
}
