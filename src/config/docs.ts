import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { asNode, type JsonSchemaNode, unionOptions } from "../core/wire/json-schema.js";
import { configJsonSchema } from "./json-schema.js";
import { listPresets, presetsDirectory } from "./presets.js";

/*
 * Renders docs/CONFIGURATION.md, the configuration reference, from the schema (through its JSON Schema, which
 * carries every type, default, range and description). Run `npm run docs:config` after changing the schema;
 * a test fails while the file is stale.
 */

export function configurationDocsPath(): string {
  return join(dirname(presetsDirectory()), "docs", "CONFIGURATION.md");
}

export function renderConfigurationDocs(): string {
  const schema = configJsonSchema();
  return [INTRODUCTION, ...tablesOf(schema, "", false).map(renderTable)].join("\n").replace(/\n{3,}/g, "\n\n");
}

const INTRODUCTION = `# Configuration reference (\`decision-gate.toml\`)

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`; do not edit by hand. -->

Decision Gate reads one TOML file. Every key is optional unless marked **required**; an empty file is valid
(stdio transport, \`local_only\` auth, in-memory stores, no providers, docs on, audit log on stderr). The
machine-readable form of this reference is the JSON Schema printed by \`decision-gate config schema\`.

## Loading

- **Which file.** \`--config <path>\`, else \`$DECISION_GATE_CONFIG\` (at most 4096 bytes), else
  \`./decision-gate.toml\`. When none exists, the built-in \`quickstart-dev\` preset runs, with its SQLite files and
  the json provider's root under \`./.decision-gate/\` (created if missing). The reference requires a file.
- **Limits.** At most 1 MiB (\`invalid config: config file exceeds size limit\`), UTF-8
  (\`config file must be utf-8\`). Errors start with \`config io error: \`, \`config parse error: \` or
  \`invalid config: <key path>: <message>\`; every problem found is listed, the reference's first one first.
- **Relative paths** (SQLite files, audit log, TLS files, json provider \`root\`, MCP \`capabilities_path\`,
  \`docs.extra_paths\`, the runpack root) resolve against the working directory, as with the reference, or against
  the directory of the configuration file with \`[paths] relative_to = "config_file"\` (this project's presets set
  it, so a preset means the same wherever the server starts). Trust key paths (\`require_signature.keys\`) are kept
  as written, because the string is also the key id that signed evidence names; the key files are read relative to
  the same directory.
- **Unknown keys** are reported with the nearest valid key (\`unknown key server.trasport; did you mean
  server.transport?\`): a warning, or an error with \`--strict-config\`. The reference ignores them silently.
  The \`[client]\` table (the CLI's \`[client.auth_profiles.<name>]\`) and builtin providers' \`config\` tables accept
  any key.
- **Legacy.** \`server.mode = "dev_permissive"\` means \`[dev] permissive = true\`.

## Cross-field rules

- HTTP/SSE need \`server.bind\` (\`http/sse transport requires bind address\`), an IP literal with a port
  (\`invalid bind address\`); a non-loopback bind needs \`bearer_token\`, \`mtls\` or \`oauth\` auth
  (\`non-loopback bind disallowed without auth policy\`). Serving on it also needs the explicit opt-in
  (\`--allow-non-loopback\` or \`DECISION_GATE_ALLOW_NON_LOOPBACK=1\`) and \`[server.tls]\` or
  \`tls_termination = "upstream"\`.
- stdio supports only \`local_only\` auth and no TLS.
- \`server.limits.header_timeout_ms\` may not exceed \`request_timeout_ms\` (the latter covers headers and body). A
  non-loopback \`server.metrics.bind\` needs the same opt-in as a non-loopback \`server.bind\`.
- \`bearer_token\` auth needs \`bearer_tokens\`; \`mtls\` auth needs \`mtls_subjects\`; \`oauth\` auth needs
  \`[server.auth.oauth]\` (and the table is refused otherwise), whose URLs use https (http only for a loopback host).
- \`server.feedback.scenario_next\`: \`default\` and \`local_only_default\` may not exceed \`max\`.
- \`namespace.allow_default\` needs \`namespace.default_tenants\`; \`namespace.authority.mode = "assetcore_http"\` needs
  \`[namespace.authority.assetcore]\` (and the table is refused otherwise); dev-permissive is refused with
  \`assetcore_http\`.
- \`validation.strict = false\` needs \`validation.allow_permissive = true\`.
- \`policy.engine = "static"\` needs \`[policy.static]\` (and the table is refused otherwise).
- SQLite stores need \`path\`; memory stores must not set it.
- \`runpack_storage.attestation = true\` needs \`runpack_storage.signing_key\`.
- Providers: names unique; builtin names are \`time\`, \`env\`, \`json\`, \`http\` and builtin entries take no MCP
  keys; MCP entries need \`command\` or \`url\` and \`capabilities_path\`, and no \`config\`; an \`http://\` URL needs
  \`allow_insecure_http\`.

## Presets

Ready-made files in \`presets/\`: ${listPresets()
  .map((name) => `\`${name}.toml\``)
  .join(", ")}. Each explains its choices in comments.

## Keys
`;

interface Table {
  /** Dotted key path, without array markers; empty for the top level. */
  path: string;
  /** The heading: a TOML header (`[a.b]`, `[[a.b]]` for an array of tables) and the variant of a union. */
  title: string;
  description: string | null;
  node: JsonSchemaNode;
}

/** The tables of `node` in document order: the table itself, then nested tables depth-first. */
function tablesOf(node: JsonSchemaNode, path: string, isArray: boolean, description = describe(node)): Table[] {
  const header = path === "" ? "Top-level tables" : isArray ? `\`[[${path}]]\`` : `\`[${path}]\``;
  const variants = unionOptions(node).filter(hasKeys);
  if (variants.length === 0) return tablesFrom({ path, title: header, description, node });
  return variants.flatMap((variant) =>
    tablesFrom({
      path,
      title: `${header} ${variantLabel(variant, variants.length)}`,
      description: describe(variant) ?? description,
      node: variant,
    }),
  );
}

function tablesFrom(table: Table): Table[] {
  const nested = Object.entries(propertiesOf(table.node)).flatMap(([key, child]) => {
    const childPath = table.path === "" ? key : `${table.path}.${key}`;
    const items = asNode(child.items);
    if (items !== undefined && isTable(items))
      return tablesOf(items, childPath, true, describe(items) ?? describe(child));
    return isTable(child) ? tablesOf(child, childPath, false) : [];
  });
  return [table, ...nested];
}

function isTable(node: JsonSchemaNode): boolean {
  return hasKeys(node) || unionOptions(node).some(hasKeys);
}

function describe(node: JsonSchemaNode): string | null {
  return typeof node.description === "string" ? node.description : null;
}

function hasKeys(node: JsonSchemaNode): boolean {
  return Object.keys(propertiesOf(node)).length > 0;
}

function propertiesOf(node: JsonSchemaNode): Record<string, JsonSchemaNode> {
  const entries = Object.entries(asNode(node.properties) ?? {}).flatMap(([key, value]) => {
    const child = asNode(value);
    return child === undefined ? [] : [[key, child] as const];
  });
  return Object.fromEntries(entries);
}

/** `with type = "filesystem"` for a variant told apart by a constant key. */
function variantLabel(variant: JsonSchemaNode, count: number): string {
  for (const [key, child] of Object.entries(propertiesOf(variant))) {
    if (child.const !== undefined) return `with \`${key} = ${JSON.stringify(child.const)}\``;
  }
  return count === 1 ? "(table form)" : `(${describe(variant) ?? "variant"})`;
}

function renderTable(table: Table): string {
  const required = new Set(Array.isArray(table.node.required) ? (table.node.required as string[]) : []);
  const rows = Object.entries(propertiesOf(table.node)).map(([key, child]) => renderRow(key, child, required.has(key)));
  return [
    `### ${table.title}`,
    "",
    table.description ?? "",
    "",
    "| Key | Type | Default | Description |",
    "|---|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}

function renderRow(key: string, node: JsonSchemaNode, required: boolean): string {
  const description = typeof node.description === "string" ? node.description : "";
  return `| \`${key}\` | ${cell(typeText(node))} | ${cell(defaultText(node, required))} | ${cell(description)} |`;
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function defaultText(node: JsonSchemaNode, required: boolean): string {
  if (required) return "**required**";
  if (node.default === undefined) return "—";
  if (isEmptyTable(node.default)) return "—";
  return `\`${JSON.stringify(node.default)}\``;
}

function isEmptyTable(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}

function typeText(node: JsonSchemaNode): string {
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (Array.isArray(node.enum)) return enumText(node.enum);
  const options = unionOptions(node);
  if (options.length > 0) return [...new Set(options.map(typeText))].join(" or ");
  switch (node.type) {
    case "integer":
      return `integer${rangeText(node.minimum, node.maximum)}`;
    case "string":
    case "boolean":
      return node.type;
    case "array":
      return `array of ${arrayItemText(asNode(node.items))}${countText(node.minItems, node.maxItems)}`;
    case "object":
      return hasKeys(node) ? "table" : "table (any keys)";
    default:
      return "any";
  }
}

/** Long lists (tool names) read better without quotes, one after the other. */
function enumText(values: readonly unknown[]): string {
  if (values.length <= 6) return values.map((value) => `\`${JSON.stringify(value)}\``).join(" | ");
  return `one of ${values.map((value) => `\`${String(value)}\``).join(", ")}`;
}

function arrayItemText(items: JsonSchemaNode | undefined): string {
  if (items === undefined) return "any";
  if (hasKeys(items)) return "tables";
  const text = typeText(items);
  return text.includes(" | ") || text.startsWith("one of") ? `(${text})` : text;
}

function rangeText(minimum: unknown, maximum: unknown): string {
  if (typeof minimum === "number" && typeof maximum === "number") return ` ${minimum}..=${maximum}`;
  if (typeof minimum === "number") return ` ≥ ${minimum}`;
  if (typeof maximum === "number") return ` ≤ ${maximum}`;
  return "";
}

function countText(minItems: unknown, maxItems: unknown): string {
  const parts = [
    typeof minItems === "number" ? `at least ${minItems}` : null,
    typeof maxItems === "number" ? `at most ${maxItems}` : null,
  ].filter((part) => part !== null);
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`;
}

async function main(): Promise<void> {
  const path = configurationDocsPath();
  await writeFile(path, renderConfigurationDocs());
  process.stdout.write(`wrote ${path}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
