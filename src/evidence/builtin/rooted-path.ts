import { lstat, readlink } from "node:fs/promises";
import path from "node:path";

/**
 * Where a relative path leads from a root directory, resolved as realpath(3) resolves it (every symlink followed,
 * `..` applied where it appears, so after a symlink it climbs out of the link's target) — but one component at a
 * time, and without ever asking the file system about anything outside the root.
 *
 * A plain realpath followed by a containment check answers "escapes the root" for an existing outside file and
 * "not found" for a missing one, telling callers which files exist elsewhere on the server. Here, as soon as the
 * next component would lie outside the root, the answer is `outside`, whatever is there. The root's own ancestors
 * are the exception: `..` and absolute symlink targets pass through them on the way back in, and their existence
 * is no secret. So a path is `outside` also when it would leave the root and come back through another directory
 * (`../elsewhere/../root/a.json`), which a plain realpath would accept.
 */
export type RootedResolution =
  /** `relative`: the POSIX path from the root ("" for the root itself). */
  | { kind: "resolved"; absolute: string; relative: string }
  | { kind: "outside" }
  /** Missing, a broken symlink, a symlink loop, a file used as a directory, an unusable name. */
  | { kind: "unresolvable" };

/** glibc's limit on symlinks followed in one resolution (ELOOP beyond it). */
const MAX_SYMLINK_FOLLOWS = 40;

/** `root` must be canonical (a realpath); `relative` uses `/` separators. */
export async function resolveWithinRoot(root: string, relative: string): Promise<RootedResolution> {
  const pending = relative.split("/");
  let current = root;
  let currentIsDirectory = true;
  let follows = 0;
  for (let component = pending.shift(); component !== undefined; component = pending.shift()) {
    if (!currentIsDirectory) return { kind: "unresolvable" }; // ENOTDIR, as for `file.json/` or `file.json/x`
    if (component === "" || component === ".") continue;
    if (component === "..") {
      current = path.dirname(current); // `current` never contains a symlink, so its parent is lexical
      continue;
    }
    const next = path.join(current, component);
    if (!isWithinOrAbove(root, next)) return { kind: "outside" };
    const info = await lstat(next).catch(() => undefined);
    if (info === undefined) return { kind: "unresolvable" };
    if (info.isSymbolicLink()) {
      const target = await readlink(next).catch(() => undefined);
      if (target === undefined || ++follows > MAX_SYMLINK_FOLLOWS) return { kind: "unresolvable" };
      if (path.isAbsolute(target)) current = path.parse(target).root;
      pending.unshift(...target.split("/"));
      continue;
    }
    current = next;
    currentIsDirectory = info.isDirectory();
  }
  if (current === root) return { kind: "resolved", absolute: current, relative: "" };
  if (!isBelow(root, current)) return { kind: "outside" };
  return {
    kind: "resolved",
    absolute: current,
    relative: current.slice(withSeparator(root).length).split(path.sep).join("/"),
  };
}

function isWithinOrAbove(root: string, candidate: string): boolean {
  return candidate === root || isBelow(root, candidate) || isAbove(root, candidate);
}

/** Component-wise: `/root2/x` is not below `/root`. */
function isBelow(root: string, candidate: string): boolean {
  return candidate.startsWith(withSeparator(root));
}

function withSeparator(directory: string): string {
  return directory.endsWith(path.sep) ? directory : `${directory}${path.sep}`;
}

/** `candidate` is a proper ancestor of `root`. */
function isAbove(root: string, candidate: string): boolean {
  return candidate !== root && isBelow(candidate, root);
}
