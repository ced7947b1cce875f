import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/*
 * The presets shipped in `presets/` at the package root: ready-made `decision-gate.toml` files with the same
 * security posture as the reference's presets (interface §6).
 */

export const PRESET_NAMES = [
  "quickstart-dev",
  "default-recommended",
  "hardened",
  "container-prod",
  "ci-release-gate",
] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** The preset used when no configuration file is found. */
export const BUILTIN_PRESET: PresetName = "quickstart-dev";

export function listPresets(): readonly PresetName[] {
  return PRESET_NAMES;
}

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

/** Absolute path of a preset file; throws for an unknown name. */
export function presetPath(name: string): string {
  if (!isPresetName(name)) throw new Error(`unknown preset: ${name} (available: ${PRESET_NAMES.join(", ")})`);
  return join(presetsDirectory(), `${name}.toml`);
}

let cachedDirectory: string | undefined;

/** `presets/` next to the nearest ancestor of this module that has one (works from `src/` and from a build). */
export function presetsDirectory(): string {
  cachedDirectory ??= findPresetsDirectory(dirname(fileURLToPath(import.meta.url)));
  return cachedDirectory;
}

function findPresetsDirectory(start: string): string {
  for (let directory = start; ; directory = dirname(directory)) {
    const candidate = join(directory, "presets");
    if (existsSync(join(candidate, `${BUILTIN_PRESET}.toml`))) return candidate;
    if (dirname(directory) === directory) throw new Error(`presets directory not found above ${start}`);
  }
}

/** The preset a file path names (one of the files in `presets/`), or null. */
export function presetNameOfPath(path: string): PresetName | null {
  let directory: string;
  try {
    directory = presetsDirectory();
  } catch {
    return null;
  }
  return PRESET_NAMES.find((name) => join(directory, `${name}.toml`) === path) ?? null;
}
