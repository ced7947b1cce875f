import type { z } from "zod";
import { isJsonObject } from "../json/value.js";
import { DecisionGateConfig, OPEN_FIELD_SCHEMAS } from "./schema.js";

/*
 * Unknown keys in a configuration file: the reference ignores them silently, so typos go unnoticed (interface
 * §10 item 13). Here the parsed TOML is walked alongside the schema and every key the schema does not know is
 * reported with the nearest valid key. Open tables (records, `client`, builtin provider `config`) accept any key.
 */

export interface UnknownKey {
  /** Dotted path of the key, e.g. `server.trasport` or `providers[1].nmae`. */
  path: string;
  /** Dotted path of the nearest valid key, or null when nothing is close. */
  suggestion: string | null;
}

export function formatUnknownKey(key: UnknownKey): string {
  const hint = key.suggestion === null ? "" : `; did you mean ${key.suggestion}?`;
  return `unknown key ${key.path}${hint}`;
}

/** Every key of `input` (a parsed TOML document) that `schema` does not define, in document order. */
export function findUnknownKeys(input: unknown, schema: z.ZodType = DecisionGateConfig): UnknownKey[] {
  const found: UnknownKey[] = [];
  walk(schema, input, { dotted: "", pattern: "" }, found);
  return found;
}

/** Where the walk is: the dotted path with indices (for messages) and with `[]` (for `OPEN_FIELD_SCHEMAS`). */
interface Location {
  dotted: string;
  pattern: string;
}

function child(location: Location, key: string): Location {
  const join = (prefix: string) => (prefix === "" ? key : `${prefix}.${key}`);
  return { dotted: join(location.dotted), pattern: join(location.pattern) };
}

function item(location: Location, index: number): Location {
  return { dotted: `${location.dotted}[${index}]`, pattern: `${location.pattern}[]` };
}

type Def = z.core.$ZodTypeDef & Record<string, unknown>;

function defOf(schema: z.core.$ZodType): Def {
  return schema._zod.def as Def;
}

/** The schema that describes the input, without optional/default/pipe wrappers. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (def.innerType !== undefined) current = def.innerType as z.core.$ZodType;
    else if (def.type === "pipe") current = def.in as z.core.$ZodType;
    else if (def.type === "lazy") current = (def.getter as () => z.core.$ZodType)();
    else return current;
  }
}

function walk(schema: z.core.$ZodType, value: unknown, location: Location, found: UnknownKey[]): void {
  const resolved = unwrap(OPEN_FIELD_SCHEMAS[location.pattern] ?? schema);
  const def = defOf(resolved);
  switch (def.type) {
    case "object":
      if (isJsonObject(value)) walkObject(def.shape as Record<string, z.core.$ZodType>, value, location, found);
      return;
    case "array":
      if (Array.isArray(value)) {
        for (const [index, element] of value.entries()) {
          walk(def.element as z.core.$ZodType, element, item(location, index), found);
        }
      }
      return;
    case "record":
      if (isJsonObject(value)) {
        for (const [key, entry] of Object.entries(value)) {
          walk(def.valueType as z.core.$ZodType, entry, child(location, key), found);
        }
      }
      return;
    case "union": {
      const option = matchingObjectShape(def, value);
      if (option !== null && isJsonObject(value)) walkObject(option, value, location, found);
      return;
    }
    default:
      return;
  }
}

function walkObject(
  shape: Record<string, z.core.$ZodType>,
  value: Record<string, unknown>,
  location: Location,
  found: UnknownKey[],
): void {
  for (const [key, entry] of Object.entries(value)) {
    const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (field !== undefined) {
      walk(field, entry, child(location, key), found);
      continue;
    }
    const nearest = nearestKey(key, Object.keys(shape));
    found.push({
      path: child(location, key).dotted,
      suggestion: nearest === null ? null : child(location, nearest).dotted,
    });
  }
}

/**
 * The keys a union accepts for an object value: the option its discriminator selects, or else the keys of all
 * its object options together. Null when no option is an object (e.g. a union of literals).
 */
function matchingObjectShape(def: Def, value: unknown): Record<string, z.core.$ZodType> | null {
  const objects = (def.options as z.core.$ZodType[]).map(unwrap).filter((option) => defOf(option).type === "object");
  if (objects.length === 0) return null;
  const discriminator = def.discriminator as string | undefined;
  if (discriminator !== undefined && isJsonObject(value)) {
    const selected = objects.find((option) =>
      option._zod.propValues?.[discriminator]?.has(value[discriminator] as never),
    );
    if (selected !== undefined) return defOf(selected).shape as Record<string, z.core.$ZodType>;
  }
  return Object.assign({}, ...objects.map((option) => defOf(option).shape));
}

/** The candidate within a small edit distance of `key` (scaled with its length), closest first. */
export function nearestKey(key: string, candidates: readonly string[]): string | null {
  let best: { candidate: string; distance: number } | null = null;
  for (const candidate of candidates) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    const tolerance = Math.max(1, Math.floor(Math.max(key.length, candidate.length) / 3));
    if (distance <= tolerance && (best === null || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate ?? null;
}

/** Damerau–Levenshtein distance (optimal string alignment: insertions, deletions, substitutions, transpositions). */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, at(i - 2, j - 2) + 1);
      }
      (rows[i] as number[])[j] = distance;
    }
  }
  return at(a.length, b.length);
}
