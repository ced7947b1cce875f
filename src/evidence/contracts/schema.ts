import { z } from "zod";
import { Comparator } from "../../core/spec/schema.js";
import { AnyJson } from "../../core/wire/common.js";

/*
 * Provider contracts (evidence §2.3): what a provider offers, per check. Every key is required, as with the
 * reference's serde structs; unknown keys are dropped, so they never reach the contract hash.
 */

export const DeterminismClass = z.enum(["deterministic", "time_dependent", "external"]);
export type DeterminismClass = z.output<typeof DeterminismClass>;

export const CheckExample = z.object({
  description: z.string(),
  params: AnyJson,
  result: AnyJson,
});
export type CheckExample = z.output<typeof CheckExample>;

export const CheckContract = z.object({
  check_id: z.string(),
  description: z.string(),
  determinism: DeterminismClass,
  params_required: z.boolean(),
  params_schema: AnyJson,
  result_schema: AnyJson,
  allowed_comparators: z.array(Comparator),
  anchor_types: z.array(z.string()),
  content_types: z.array(z.string()),
  examples: z.array(CheckExample),
});
export type CheckContract = z.output<typeof CheckContract>;

export const ProviderContract = z.object({
  provider_id: z.string(),
  name: z.string(),
  description: z.string(),
  /** `builtin` for the built-in providers; contract files must say `mcp` (checked when loading). */
  transport: z.string(),
  config_schema: AnyJson,
  checks: z.array(CheckContract),
  notes: z.array(z.string()),
});
export type ProviderContract = z.output<typeof ProviderContract>;
