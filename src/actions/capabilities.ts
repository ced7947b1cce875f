/*
 * The Stage357 mapping from a runtime decision to a defensive action and the capabilities it leaves the agent
 * (spec §6). Shared by the per-decision receipts and the Stage356 receipt layer; pure.
 */

export const RUNTIME_DECISIONS = ["allow", "warn", "block"] as const;
export type RuntimeDecision = (typeof RUNTIME_DECISIONS)[number];

export const RUNTIME_ACTIONS = ["continue", "isolate_and_continue", "terminate"] as const;
export type RuntimeAction = (typeof RUNTIME_ACTIONS)[number];

const ACTIONS: Readonly<Record<RuntimeDecision, RuntimeAction>> = {
  allow: "continue",
  warn: "isolate_and_continue",
  block: "terminate",
};

/** Capability names: `isolated` are withheld on `warn`, `allowed` are what a warned agent keeps. */
export interface CapabilitySets {
  readonly allowed: readonly string[];
  readonly isolated: readonly string[];
}

export const DEFAULT_CAPABILITIES: CapabilitySets = {
  isolated: ["private_runner", "unsafe_payload_fetch", "secret_material_access"],
  allowed: ["public_metadata_verification"],
};

export function isRuntimeDecision(value: unknown): value is RuntimeDecision {
  return typeof value === "string" && (RUNTIME_DECISIONS as readonly string[]).includes(value);
}

export function actionFor(decision: RuntimeDecision): RuntimeAction {
  return ACTIONS[decision];
}

/** What the agent may still use after `decision`: everything, only the allowed set, or nothing. */
export function capabilitiesFor(
  decision: RuntimeDecision,
  caps: CapabilitySets = DEFAULT_CAPABILITIES,
): { allowed: string[]; isolated: string[] } {
  switch (actionFor(decision)) {
    case "continue":
      return { allowed: allCapabilities(caps), isolated: [] };
    case "isolate_and_continue":
      return { allowed: [...caps.allowed], isolated: [...caps.isolated] };
    case "terminate":
      return { allowed: [], isolated: allCapabilities(caps) };
  }
}

function allCapabilities(caps: CapabilitySets): string[] {
  return [...new Set([...caps.allowed, ...caps.isolated])].sort();
}
