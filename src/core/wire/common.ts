import { z } from "zod";
import { I64_MAX, I64_MIN, type JsonValue, U64_MAX } from "../../json/value.js";
import { InvalidInputError } from "../errors.js";

/*
 * Shared building blocks of the wire schemas. Conventions (engine §0):
 * - JSON integers are `bigint` (see src/json/value.ts); floats never satisfy an integer field.
 * - `nullable(x)`: an `Option` field written as `null` when unset; missing and `null` are the same.
 * - `omittedWhenNull(x)`: an `Option` field left out of the serialized form when unset.
 * - Lists are required even when empty; unknown keys are dropped.
 */

export const U64 = z.bigint().gte(0n).lte(U64_MAX);
export const I64 = z.bigint().gte(I64_MIN).lte(I64_MAX);
export const NonZeroU64 = z.bigint().gte(1n).lte(U64_MAX);

export const TenantId = NonZeroU64;
export const NamespaceId = NonZeroU64;

/** Any JSON value, as produced by the lossless parser. */
export const AnyJson = z.custom<JsonValue>((value) => value !== undefined, { message: "expected a JSON value" });

export function nullable<T extends z.ZodType>(schema: T) {
  return schema.nullable().default(null);
}

export function omittedWhenNull<T extends z.ZodType>(schema: T) {
  return schema
    .nullish()
    .transform((value) => value ?? undefined)
    .optional();
}

/** `Vec<u8>`: a JSON array of integers 0..=255, held as a `Uint8Array`. */
export const Bytes = z.array(z.bigint().gte(0n).lte(255n)).transform((items) => Uint8Array.from(items, Number));

export const Timestamp = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("unix_millis"), value: I64 }),
  z.object({ kind: z.literal("logical"), value: U64 }),
]);
export type Timestamp = z.output<typeof Timestamp>;

export const HashDigest = z.object({ algorithm: z.literal("sha256"), value: z.string() });
export type HashDigest = z.output<typeof HashDigest>;

export const TrustLane = z.enum(["verified", "asserted"]);
export type TrustLane = z.output<typeof TrustLane>;

export const TrustRequirement = z.object({ min_lane: TrustLane });
export type TrustRequirement = z.output<typeof TrustRequirement>;

export const TriState = z.enum(["True", "False", "Unknown"]);
export type TriState = z.output<typeof TriState>;

/**
 * Validates `input` (a value from the lossless parser) against `schema`. Failures become an
 * `InvalidInputError` whose message names every offending field, prefixed by `label` (e.g. `spec`).
 */
export function decode<T extends z.ZodType>(schema: T, input: unknown, label: string): z.output<T> {
  const result = schema.safeParse(input, { error: describeIssue });
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: formatPath(label, issue.path),
    message: issue.message,
  }));
  const text = issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ");
  throw new InvalidInputError(`invalid ${label}: ${text}`, { issues });
}

function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.input === undefined && (issue.code === "invalid_type" || issue.code === "invalid_value")) {
    return "missing field";
  }
  if (issue.code === "invalid_type" && issue.expected === "bigint") return "expected an integer";
  return undefined;
}

export function formatPath(label: string, path: readonly PropertyKey[]): string {
  let text = label;
  for (const key of path) text += typeof key === "number" ? `[${key}]` : `.${String(key)}`;
  return text;
}
