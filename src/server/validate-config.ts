import { invalidConfigIssues } from "../config/load.js";
import type { DecisionGateConfig } from "../config/schema.js";
import { toolNames } from "./tools/catalog.js";

/**
 * The checks of a configuration that need what only the server knows, run wherever a configuration is loaded for
 * use (`serve`, `config validate`, the store commands): every tool that `allowed_tools` and `[server.tools]` name
 * must be in the tool table. Throws the same `invalid config` error as the loader's own checks.
 */
export function validateServerConfig(config: DecisionGateConfig): void {
  const known = new Set(toolNames());
  const unknown = (path: string, names: readonly string[], prefix: string) =>
    names.flatMap((name, index) =>
      known.has(name) ? [] : [{ path: `${path}[${index}]`, message: `${prefix}${name}` }],
    );
  const issues = [
    ...unknown("server.auth.allowed_tools", config.server.auth.allowed_tools, "unknown tool in allowlist: "),
    ...unknown("server.tools.allowlist", config.server.tools.allowlist, "unknown tool in server.tools list: "),
    ...unknown("server.tools.denylist", config.server.tools.denylist, "unknown tool in server.tools list: "),
  ];
  if (issues.length > 0) throw invalidConfigIssues(issues);
}
