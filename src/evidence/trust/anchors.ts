import { z } from "zod";
import { type AnchorRequirement, normalizeRequiredFields } from "../../core/run/anchors.js";

/** `[anchors]`: per-provider anchor requirements, checked on every answer used for a decision. */
export const AnchorsConfig = z
  .object({
    providers: z
      .array(
        z.object({
          provider_id: z.string(),
          anchor_type: z.string(),
          required_fields: z.array(z.string()),
        }),
      )
      .default([]),
  })
  .superRefine((config, context) => {
    const seen = new Set<string>();
    config.providers.forEach((entry, index) => {
      const issue = (field: string, message: string) =>
        context.addIssue({ code: "custom", path: ["providers", index, field], message });
      if (entry.provider_id.trim().length === 0 || entry.provider_id.trim() !== entry.provider_id) {
        issue("provider_id", "must be non-blank and trimmed");
      }
      if (entry.anchor_type.trim().length === 0) issue("anchor_type", "must be non-blank");
      if (normalizeRequiredFields(entry.required_fields).length === 0) issue("required_fields", "must not be empty");
      if (seen.has(entry.provider_id)) {
        issue("provider_id", `duplicate anchors.providers.provider_id: ${entry.provider_id}`);
      }
      seen.add(entry.provider_id);
    });
  });
export type AnchorsConfig = z.output<typeof AnchorsConfig>;

/** The requirements keyed by provider id. */
export function anchorRequirements(config: AnchorsConfig): Map<string, AnchorRequirement> {
  return new Map(
    config.providers.map((entry) => [
      entry.provider_id,
      { anchor_type: entry.anchor_type, required_fields: normalizeRequiredFields(entry.required_fields) },
    ]),
  );
}
