import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DecisionGateError, InvalidInputError } from "../../core/errors.js";
import type { JsonValue } from "../../json/value.js";

/*
 * The documentation served by `resources/list`, `resources/read` and `decision_gate_docs_search`: this project's
 * own docs folder (read once, at startup) plus the operator's `[docs] extra_paths`. Limits follow interface §5.19:
 * the default corpus must fit entirely (else startup fails); extra docs that do not fit are skipped with a warning.
 */

export type DocRole = "reasoning" | "decision" | "ontology" | "pattern";

export interface DocEntry {
  readonly doc_id: string;
  readonly title: string;
  readonly role: DocRole;
  readonly uri: string;
  readonly description: string;
  readonly markdown: string;
}

/** The `[docs]` keys that shape the catalog; integers may arrive as `bigint` from the config loader. */
export interface DocsCatalogSettings {
  include_default_docs: boolean;
  extra_paths: readonly string[];
  max_doc_bytes: number | bigint;
  max_total_bytes: number | bigint;
  max_docs: number | bigint;
}

export const DEFAULT_DOCS_CATALOG_SETTINGS: DocsCatalogSettings = {
  include_default_docs: true,
  extra_paths: [],
  max_doc_bytes: 262_144,
  max_total_bytes: 1_048_576,
  max_docs: 32,
};

export const DOCS_URI_PREFIX = "decision-gate://docs/";
export const DOCS_MIME_TYPE = "text/markdown";

/** A docs catalog that cannot be built; the server refuses to start. */
export class DocsCatalogError extends DecisionGateError {
  constructor(code: "docs_catalog_io" | "docs_catalog_invalid", detail: string) {
    const prefix = code === "docs_catalog_io" ? "docs catalog io error" : "docs catalog invalid";
    super("invalid_request", code, `${prefix}: ${detail}`);
  }
}

interface DefaultDocSeed {
  file: string;
  slug: string;
  role: DocRole;
  description?: string;
}

/**
 * This project's docs in catalog order (the order breaks search ties). Markdown files in the folder that are not
 * listed here are served after these, alphabetically, as `pattern` docs.
 */
const DEFAULT_DOCS: readonly DefaultDocSeed[] = [
  {
    file: "ARCHITECTURE.md",
    slug: "architecture",
    role: "reasoning",
    description: "How Decision Gate is built: JSON model, wire types, errors, control plane, evidence, runpacks.",
  },
  {
    file: "DIFFERENCES.md",
    slug: "differences",
    role: "decision",
    description: "Where this server deliberately differs from the reference implementation, and why.",
  },
  {
    file: "providers.md",
    slug: "providers",
    role: "ontology",
    description: "Evidence providers, the trust pipeline and disclosure policy.",
  },
  {
    file: "providers-json.md",
    slug: "providers-json",
    role: "pattern",
    description: "The json evidence provider: configuration, the path check, JSONPath and YAML.",
  },
  {
    file: "providers-http.md",
    slug: "providers-http",
    role: "pattern",
    description: "The http evidence provider: configuration, checks, results and network safety.",
  },
  {
    file: "CONFIGURATION.md",
    slug: "configuration",
    role: "ontology",
    description: "Every decision-gate.toml key: types, defaults, limits and cross-field rules.",
  },
  {
    file: "PERFORMANCE.md",
    slug: "performance",
    role: "reasoning",
    description: "Performance characteristics and benchmarks.",
  },
  {
    file: "TOOLS.md",
    slug: "tools",
    role: "ontology",
    description: "Every MCP tool: description, input fields and output fields (generated from the tool catalog).",
  },
  {
    file: "GETTING_STARTED.md",
    slug: "getting-started",
    role: "pattern",
    description: "From npm install to a completed, verified release gate in five minutes.",
  },
  {
    file: "MCP_CLIENTS.md",
    slug: "mcp-clients",
    role: "pattern",
    description: "Connecting Claude Desktop, the MCP Inspector, the MCP SDK and /rpc clients, with troubleshooting.",
  },
  {
    file: "PRESETS.md",
    slug: "presets",
    role: "pattern",
    description: "The shipped presets: what each is for, its settings, how to start it and derive your own.",
  },
];

/** The file every candidate default docs folder must contain. */
const DOCS_MARKER = "ARCHITECTURE.md";

export class DocsCatalog {
  private readonly byUri: ReadonlyMap<string, DocEntry>;

  constructor(
    readonly docs: readonly DocEntry[],
    readonly warnings: readonly string[] = [],
  ) {
    this.byUri = new Map(docs.map((doc) => [doc.uri, doc]));
  }

  /** Builds the catalog from the default docs folder and `extra_paths`; throws `DocsCatalogError`. */
  static fromConfig(settings: Partial<DocsCatalogSettings> = {}): DocsCatalog {
    const given = Object.entries(settings).filter((entry) => entry[1] !== undefined);
    const limits: DocsCatalogSettings = { ...DEFAULT_DOCS_CATALOG_SETTINGS, ...Object.fromEntries(given) };
    const seenIds = new Set<string>();
    const docs = limits.include_default_docs ? loadDefaultDocs(seenIds) : [];
    checkDefaultCorpusFits(docs, limits);
    const warnings: string[] = [];
    const extras = limits.extra_paths.flatMap((path) => loadExtraPath(path, seenIds, limits, warnings));
    admitExtraDocs(docs, extras, limits, warnings);
    return new DocsCatalog(docs, warnings);
  }

  resourcesList(): JsonValue {
    return {
      resources: this.docs.map((doc) => ({
        uri: doc.uri,
        name: doc.title,
        description: doc.description,
        mimeType: DOCS_MIME_TYPE,
      })),
    };
  }

  /** `resources/read` for one URI; `uri` is whatever the caller sent (anything but a string counts as missing). */
  resourcesRead(uri: unknown): JsonValue {
    if (typeof uri !== "string") throw new InvalidInputError("resources.read requires uri");
    if (!uri.startsWith(DOCS_URI_PREFIX)) {
      throw new InvalidInputError(`resource uri must start with ${DOCS_URI_PREFIX}`);
    }
    const doc = this.byUri.get(uri);
    if (doc === undefined) throw new InvalidInputError(`unknown resource uri: ${uri}`);
    return { contents: [{ uri: doc.uri, mimeType: DOCS_MIME_TYPE, text: doc.markdown }] };
  }
}

/** The `uri` of `resources/read` params, given as `{"uri": …}` or `{"arguments": {"uri": …}}`. */
export function resourceUriParam(params: JsonValue | undefined): unknown {
  if (!isPlainObject(params)) return undefined;
  if (params.uri !== undefined) return params.uri;
  const args = params.arguments;
  return isPlainObject(args) ? args.uri : undefined;
}

function isPlainObject(value: unknown): value is Record<string, JsonValue | undefined> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

// ---------------------------------------------------------------------------------------------------------------
// Default docs

function loadDefaultDocs(seenIds: Set<string>): DocEntry[] {
  const folder = defaultDocsFolder();
  const listed = new Set(DEFAULT_DOCS.map((seed) => seed.file));
  const unlisted = ioStep(() => readdirSync(folder))
    .filter((file) => isMarkdownFile(file) && !listed.has(file))
    .sort(compareUtf8)
    .map((file): DefaultDocSeed => ({ file, slug: idOf(file).replaceAll("_", "-"), role: "pattern" }));
  const present = DEFAULT_DOCS.filter((seed) => existsSync(join(folder, seed.file)));
  return [...present, ...unlisted].map((seed) => defaultDoc(folder, seed, seenIds));
}

function defaultDoc(folder: string, seed: DefaultDocSeed, seenIds: Set<string>): DocEntry {
  const markdown = ioStep(() => readFileSync(join(folder, seed.file), "utf8"));
  const title = titleOf(markdown, stemOf(seed.file));
  return {
    doc_id: uniqueId(idOf(seed.file), seenIds),
    title,
    role: seed.role,
    uri: `${DOCS_URI_PREFIX}${seed.slug}`,
    description: seed.description ?? `Decision Gate documentation: ${title}.`,
    markdown,
  };
}

/**
 * The project's docs folder: `../../../docs/` from this module in `src/server/docs/`; from a compiled copy one level
 * deeper (`dist/src/server/docs/`) the search continues upward to the first `docs/` holding ARCHITECTURE.md.
 */
function defaultDocsFolder(): string {
  let dir = fileURLToPath(new URL("../../../", import.meta.url));
  for (;;) {
    const candidate = join(dir, "docs");
    if (existsSync(join(candidate, DOCS_MARKER))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new DocsCatalogError("docs_catalog_io", "default docs folder not found");
    dir = parent;
  }
}

function checkDefaultCorpusFits(docs: readonly DocEntry[], limits: DocsCatalogSettings): void {
  if (docs.some((doc) => byteLength(doc) > Number(limits.max_doc_bytes))) {
    throw new DocsCatalogError("docs_catalog_invalid", "docs.max_doc_bytes too small for default corpus");
  }
  if (docs.length > Number(limits.max_docs)) {
    throw new DocsCatalogError("docs_catalog_invalid", "docs.max_docs too small for default corpus");
  }
  if (totalBytes(docs) > Number(limits.max_total_bytes)) {
    throw new DocsCatalogError("docs_catalog_invalid", "docs.max_total_bytes too small for default corpus");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Extra docs

/** Appends the extra docs that fit `max_docs` and `max_total_bytes`, in order, warning about each one skipped. */
function admitExtraDocs(
  docs: DocEntry[],
  extras: readonly DocEntry[],
  limits: DocsCatalogSettings,
  warnings: string[],
) {
  let total = totalBytes(docs);
  for (const doc of extras) {
    if (docs.length >= Number(limits.max_docs)) {
      warnings.push("docs catalog max_docs reached; skipping extra doc");
      return;
    }
    const size = byteLength(doc);
    if (total + size > Number(limits.max_total_bytes)) {
      warnings.push(`docs entry '${doc.doc_id}' exceeds max_total_bytes; skipping`);
    } else {
      total += size;
      docs.push(doc);
    }
  }
}

/** The docs at one `extra_paths` entry: a markdown file, or every markdown file below a folder (sorted by name). */
function loadExtraPath(path: string, seenIds: Set<string>, limits: DocsCatalogSettings, warnings: string[]) {
  if (!existsSync(path)) throw new DocsCatalogError("docs_catalog_io", `docs.extra_paths missing: ${path}`);
  if (ioStep(() => statSync(path)).isDirectory()) {
    return markdownFilesBelow(path).flatMap((file) => loadExtraFile(file, seenIds, limits, warnings));
  }
  if (!isMarkdownFile(path)) {
    warnings.push(`docs.extra_paths ignoring non-markdown file: ${path}`);
    return [];
  }
  return loadExtraFile(path, seenIds, limits, warnings);
}

/** Symbolic links to folders are not followed, so a link cycle cannot make the walk endless. */
function markdownFilesBelow(folder: string): string[] {
  const entries = ioStep(() => readdirSync(folder, { withFileTypes: true }));
  entries.sort((a, b) => compareUtf8(a.name, b.name));
  return entries.flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return markdownFilesBelow(path);
    return isMarkdownFile(entry.name) ? [path] : [];
  });
}

/** One extra markdown file as a doc, or nothing (with a warning) when it is not a regular file, too big or empty. */
function loadExtraFile(path: string, seenIds: Set<string>, limits: DocsCatalogSettings, warnings: string[]) {
  const stats = ioStep(() => statSync(path));
  if (!stats.isFile()) {
    warnings.push(`docs.extra_paths ignoring non-regular file: ${path}`);
    return [];
  }
  if (stats.size > Number(limits.max_doc_bytes)) {
    warnings.push(`docs entry '${idOf(path)}' exceeds max_doc_bytes; skipping`);
    return [];
  }
  const markdown = ioStep(() => readFileSync(path, "utf8")).trim();
  if (markdown === "") {
    warnings.push(`docs.extra_paths skipping empty file: ${path}`);
    return [];
  }
  const docId = uniqueId(idOf(path), seenIds);
  const doc: DocEntry = {
    doc_id: docId,
    title: titleOf(markdown, stemOf(path)),
    role: "pattern",
    uri: `${DOCS_URI_PREFIX}custom/${docId}`,
    description: `User-provided document from ${path}`,
    markdown,
  };
  return [doc];
}

function uniqueId(base: string, seenIds: Set<string>): string {
  let id = base;
  for (let suffix = 2; seenIds.has(id); suffix++) id = `${base}_${suffix}`;
  seenIds.add(id);
  return id;
}

function ioStep<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    throw new DocsCatalogError("docs_catalog_io", (error as Error).message);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Naming

function stemOf(path: string): string {
  const file = basename(path);
  return file.slice(0, file.length - extname(file).length) || file;
}

/** The file stem, lowercased, with every character that is not an ASCII letter or digit replaced by `_`. */
function idOf(path: string): string {
  return Array.from(stemOf(path), (char) => (/^[A-Za-z0-9]$/.test(char) ? char.toLowerCase() : "_")).join("");
}

/** The text of a leading `# ` heading, or `fallback`. */
function titleOf(markdown: string, fallback: string): string {
  const firstLine = markdown.trimStart().split("\n", 1)[0]?.replace(/\r$/, "") ?? "";
  return firstLine.startsWith("# ") ? firstLine.slice(2).trim() : fallback;
}

function isMarkdownFile(path: string): boolean {
  return extname(path).toLowerCase() === ".md";
}

function byteLength(doc: DocEntry): number {
  return Buffer.byteLength(doc.markdown, "utf8");
}

function totalBytes(docs: readonly DocEntry[]): number {
  return docs.reduce((sum, doc) => sum + byteLength(doc), 0);
}

/** Byte order of the UTF-8 encodings, as the reference sorts strings. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
