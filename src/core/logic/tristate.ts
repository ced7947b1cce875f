import type { TriState } from "../wire/common.js";

/* Kleene strong three-valued logic (engine §2.3): Unknown means "could be either". */

export function and(a: TriState, b: TriState): TriState {
  if (a === "False" || b === "False") return "False";
  if (a === "True" && b === "True") return "True";
  return "Unknown";
}

export function or(a: TriState, b: TriState): TriState {
  if (a === "True" || b === "True") return "True";
  if (a === "False" && b === "False") return "False";
  return "Unknown";
}

export function not(a: TriState): TriState {
  if (a === "True") return "False";
  if (a === "False") return "True";
  return "Unknown";
}
