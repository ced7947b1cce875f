import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { InvalidInputError } from "../../src/core/errors.js";
import { compactJson } from "../../src/json/write.js";
import {
  type DocEntry,
  type DocRole,
  DocsCatalog,
  DocsCatalogError,
  resourceUriParam,
} from "../../src/server/docs/catalog.js";
import { DocsSearchRequest, searchDocs, splitSections } from "../../src/server/docs/search.js";

const DOCS_FOLDER = fileURLToPath(new URL("../../docs/", import.meta.url));

const temporaryFolders: string[] = [];

afterEach(() => {
  for (const folder of temporaryFolders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A fresh folder holding `files` (relative path → content). */
function folderWith(files: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), "dg-docs-"));
  temporaryFolders.push(folder);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(folder, path, ".."), { recursive: true });
    writeFileSync(join(folder, path), content);
  }
  return folder;
}

function extraOnly(paths: string[], limits: Partial<Parameters<typeof DocsCatalog.fromConfig>[0]> = {}) {
  return DocsCatalog.fromConfig({ include_default_docs: false, extra_paths: paths, ...limits });
}

function doc(docId: string, role: DocRole, markdown: string): DocEntry {
  const title = markdown.split("\n", 1)[0]?.replace(/^# /, "") ?? docId;
  return { doc_id: docId, title, role, uri: `decision-gate://docs/${docId}`, description: "", markdown };
}

function headings(result: ReturnType<typeof searchDocs>): string[] {
  return result.sections.map((section) => `${section.rank} ${section.doc_id}/${section.heading}`);
}

function catchError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}

describe("the default docs catalog", () => {
  const catalog = DocsCatalog.fromConfig();

  it("serves this project's docs with fixed ids, roles and uris, in catalog order", () => {
    const listed = catalog.docs.slice(0, 7).map((entry) => [entry.doc_id, entry.role, entry.uri]);
    expect(listed).toEqual([
      ["architecture", "reasoning", "decision-gate://docs/architecture"],
      ["differences", "decision", "decision-gate://docs/differences"],
      ["providers", "ontology", "decision-gate://docs/providers"],
      ["providers_json", "pattern", "decision-gate://docs/providers-json"],
      ["providers_http", "pattern", "decision-gate://docs/providers-http"],
      ["configuration", "ontology", "decision-gate://docs/configuration"],
      ["performance", "reasoning", "decision-gate://docs/performance"],
    ]);
    expect(catalog.warnings).toEqual([]);
    expect(new Set(catalog.docs.map((entry) => entry.uri)).size).toBe(catalog.docs.length);
  });

  it("takes titles from the leading heading and serves the file text unchanged", () => {
    const architecture = catalog.docs[0];
    expect(architecture?.title).toBe("Architecture");
    expect(catalog.docs[4]?.title).toBe("The `http` evidence provider");
    expect(architecture?.markdown).toBe(readFileSync(join(DOCS_FOLDER, "ARCHITECTURE.md"), "utf8"));
  });

  it("lists resources as the reference shapes them", () => {
    const listing = catalog.resourcesList() as { resources: Array<Record<string, string>> };
    expect(listing.resources).toHaveLength(catalog.docs.length);
    expect(listing.resources[1]).toEqual({
      uri: "decision-gate://docs/differences",
      name: "Differences from the reference implementation",
      description: "Where this server deliberately differs from the reference implementation, and why.",
      mimeType: "text/markdown",
    });
  });

  it("reads one resource", () => {
    const text = readFileSync(join(DOCS_FOLDER, "providers.md"), "utf8");
    expect(catalog.resourcesRead("decision-gate://docs/providers")).toEqual({
      contents: [{ uri: "decision-gate://docs/providers", mimeType: "text/markdown", text }],
    });
  });

  it.each([
    [undefined, "resources.read requires uri"],
    [42n, "resources.read requires uri"],
    ["https://example.com/docs/providers", "resource uri must start with decision-gate://docs/"],
    ["decision-gate://docs/nope", "unknown resource uri: decision-gate://docs/nope"],
  ])("refuses to read %s", (uri, message) => {
    const error = catchError(() => catalog.resourcesRead(uri));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ message, kind: "invalid_params" });
  });

  it("takes the uri from either params form", () => {
    expect(resourceUriParam({ uri: "a" })).toBe("a");
    expect(resourceUriParam({ arguments: { uri: "b" } })).toBe("b");
    expect(resourceUriParam({ arguments: "c" })).toBeUndefined();
    expect(resourceUriParam(undefined)).toBeUndefined();
  });

  it.each([
    [{ max_doc_bytes: 100 }, "docs catalog invalid: docs.max_doc_bytes too small for default corpus"],
    [{ max_docs: 2n }, "docs catalog invalid: docs.max_docs too small for default corpus"],
    [{ max_total_bytes: 20_000 }, "docs catalog invalid: docs.max_total_bytes too small for default corpus"],
  ])("fails to start when the default corpus does not fit %o", (limits, message) => {
    const error = catchError(() => DocsCatalog.fromConfig(limits));
    expect(error).toBeInstanceOf(DocsCatalogError);
    expect((error as Error).message).toBe(message);
  });

  it("finds the JSONPath section first for a jsonpath query", () => {
    const result = searchDocs(catalog, { query: "JSONPath" });
    expect(result.sections[0]).toMatchObject({
      rank: 0n,
      doc_id: "providers_json",
      doc_title: "The `json` evidence provider",
      doc_role: "pattern",
      heading: "JSONPath",
    });
    expect(result.sections).toHaveLength(3);
  });
});

describe("extra docs", () => {
  it("are appended after the defaults as pattern docs under custom uris", () => {
    const folder = folderWith({ "test.md": "\n# Test Doc\nTest content\n\n" });
    const catalog = DocsCatalog.fromConfig({ extra_paths: [join(folder, "test.md")] });
    expect(catalog.docs.at(-1)).toEqual({
      doc_id: "test",
      title: "Test Doc",
      role: "pattern",
      uri: "decision-gate://docs/custom/test",
      description: `User-provided document from ${join(folder, "test.md")}`,
      markdown: "# Test Doc\nTest content",
    });
  });

  it("derive ids from the file stem and fall back to the stem as title", () => {
    const folder = folderWith({ "My Notes.v2.md": "no heading here", "Ünïcode.MD": "# Ü\nx" });
    const catalog = extraOnly([folder]);
    expect(catalog.docs.map((entry) => [entry.doc_id, entry.title])).toEqual([
      ["my_notes_v2", "My Notes.v2"],
      ["_n_code", "Ü"],
    ]);
  });

  it("get suffixed ids when stems collide, also with a default doc", () => {
    const folder = folderWith({ "a/guide.md": "# One", "b/guide.md": "# Two", "architecture.md": "# Mine" });
    const catalog = DocsCatalog.fromConfig({ extra_paths: [folder, join(folder, "a")] });
    const custom = catalog.docs.filter((entry) => entry.uri.includes("/custom/"));
    expect(custom.map((entry) => [entry.doc_id, entry.title])).toEqual([
      ["guide", "One"],
      ["architecture_2", "Mine"],
      ["guide_2", "Two"],
      ["guide_3", "One"],
    ]);
  });

  it("come from folders recursively, in name order, markdown only", () => {
    const folder = folderWith({ "z.md": "# Z", "sub/y.md": "# Y", "a.md": "# A", "notes.txt": "not markdown" });
    expect(extraOnly([folder]).docs.map((entry) => entry.title)).toEqual(["A", "Y", "Z"]);
  });

  it("warn about an explicit non-markdown file and about empty files", () => {
    const folder = folderWith({ "notes.txt": "text", "empty.md": " \n " });
    const catalog = extraOnly([join(folder, "notes.txt"), join(folder, "empty.md")]);
    expect(catalog.docs).toEqual([]);
    expect(catalog.warnings).toEqual([
      `docs.extra_paths ignoring non-markdown file: ${join(folder, "notes.txt")}`,
      `docs.extra_paths skipping empty file: ${join(folder, "empty.md")}`,
    ]);
  });

  it("must exist", () => {
    const error = catchError(() => DocsCatalog.fromConfig({ extra_paths: ["/nonexistent/docs"] }));
    expect(error).toBeInstanceOf(DocsCatalogError);
    expect((error as Error).message).toBe("docs catalog io error: docs.extra_paths missing: /nonexistent/docs");
  });

  it("are skipped with a warning when larger than max_doc_bytes", () => {
    const folder = folderWith({ "big.md": `# Big\n${"x".repeat(200)}`, "small.md": "# Small" });
    const catalog = extraOnly([folder], { max_doc_bytes: 100n });
    expect(catalog.docs.map((entry) => entry.doc_id)).toEqual(["small"]);
    expect(catalog.warnings).toEqual(["docs entry 'big' exceeds max_doc_bytes; skipping"]);
  });

  it("stop at max_docs with one warning", () => {
    const folder = folderWith({ "d1.md": "# 1", "d2.md": "# 2", "d3.md": "# 3", "d4.md": "# 4" });
    const catalog = extraOnly([folder], { max_docs: 2 });
    expect(catalog.docs.map((entry) => entry.doc_id)).toEqual(["d1", "d2"]);
    expect(catalog.warnings).toEqual(["docs catalog max_docs reached; skipping extra doc"]);
  });

  it("are skipped when they would exceed max_total_bytes, while smaller ones still fit", () => {
    const folder = folderWith({ "a.md": "# A 123456", "b.md": "# B 1234567890", "c.md": "# C" });
    const catalog = extraOnly([folder], { max_total_bytes: 14 });
    expect(catalog.docs.map((entry) => entry.doc_id)).toEqual(["a", "c"]);
    expect(catalog.warnings).toEqual(["docs entry 'b' exceeds max_total_bytes; skipping"]);
  });
});

describe("docs search", () => {
  const widgets = new DocsCatalog([
    doc("alpha", "pattern", "# Alpha\nintro about widgets\n## Widget setup\nConfigure the widget.\n## Other\nnothing"),
    doc("beta", "pattern", "# Beta\n## Appendix\nwidget mention\n## Widget setup\nwidget again"),
    doc("gamma", "pattern", "# Gamma\n## Zulu\nwidget\n## Echo\nwidget"),
  ]);

  it("ranks heading matches first, then by doc order, then by heading", () => {
    expect(headings(searchDocs(widgets, { query: "Widget", max_sections: 10n }))).toEqual([
      "0 alpha/Widget setup",
      "1 beta/Widget setup",
      "2 alpha/Alpha",
      "3 beta/Appendix",
      "4 gamma/Echo",
      "5 gamma/Zulu",
    ]);
  });

  it("scores every query term", () => {
    const result = searchDocs(widgets, { query: "widget again", max_sections: 2 });
    expect(headings(result)).toEqual(["0 beta/Widget setup", "1 alpha/Widget setup"]);
    expect(result.sections[0]?.content).toBe("widget again");
  });

  it("reports covered docs once each and follow-ups for the roles not covered", () => {
    const result = searchDocs(widgets, { query: "widget" });
    expect(result.docs_covered).toEqual([
      { doc_id: "alpha", doc_title: "Alpha", doc_role: "pattern" },
      { doc_id: "beta", doc_title: "Beta", doc_role: "pattern" },
    ]);
    expect(result.suggested_followups).toEqual([
      "For behaviour that differs from the reference implementation, search the differences doc.",
      "For conceptual grounding, query the architecture: JSON model, control plane, evidence, runpacks.",
      "For provider, trust lane or disclosure details, search the providers doc.",
    ]);
  });

  it("returns nothing, and no follow-ups, when nothing matches", () => {
    expect(searchDocs(widgets, { query: "zebra" })).toEqual({
      sections: [],
      docs_covered: [],
      suggested_followups: [],
    });
  });

  it("adds a role bonus for cue words, strongest role +2 and others +1", () => {
    const reasoning = doc("r", "reasoning", "# Doc R\n## Notes\nschema trust secret");
    const ontology = doc("o", "ontology", "# Doc O\n## Notes\nschema trust secret");
    const reasoningFirst = new DocsCatalog([reasoning, ontology]);
    expect(headings(searchDocs(reasoningFirst, { query: "schema" }))).toEqual(["0 o/Notes", "1 r/Notes"]);
    // Cues are whole words: "secret" does not hint at the ontology cue "ret".
    expect(headings(searchDocs(reasoningFirst, { query: "secret" }))).toEqual(["0 r/Notes", "1 o/Notes"]);
    // Two reasoning cues (trust, why) against one ontology cue (schema): reasoning +2 beats ontology +1.
    const ontologyFirst = new DocsCatalog([ontology, reasoning]);
    expect(headings(searchDocs(ontologyFirst, { query: "schema trust why" }))).toEqual(["0 r/Notes", "1 o/Notes"]);
  });

  it("clamps max_sections to [1, configured max] with default 3 and hard cap 10", () => {
    const many = new DocsCatalog([
      doc("many", "pattern", ["# Many", ...Array.from({ length: 12 }, (_, i) => `## S${i}\nwidget`)].join("\n")),
    ]);
    const count = (max_sections: bigint | undefined, configured?: number) =>
      searchDocs(many, { query: "widget", max_sections }, configured).sections.length;
    expect(count(undefined)).toBe(3);
    expect(count(0n)).toBe(1);
    expect(count(7n)).toBe(7);
    expect(count(50n)).toBe(10);
    expect(count(50n, 4)).toBe(4);
    expect(count(50n, 0)).toBe(1);
    expect(count(50n, 20)).toBe(10);
  });

  it("answers a blank query with the opening section of the first doc of each role", () => {
    const mixed = new DocsCatalog([
      doc("p", "pattern", "# P\npattern intro\n## Later\nx"),
      doc("r1", "reasoning", "# R1\nreasoning intro"),
      doc("r2", "reasoning", "# R2\nother"),
      doc("o", "ontology", "# O\nontology intro"),
    ]);
    const result = searchDocs(mixed, { query: "  \n " }, 10);
    expect(headings(result)).toEqual(["0 r1/R1", "1 o/O", "2 p/P"]);
    expect(result.sections[2]?.content).toBe("# P\npattern intro");
    expect(result.docs_covered.map((entry) => entry.doc_id)).toEqual(["r1", "o", "p"]);
    expect(result.suggested_followups).toEqual([
      "Refine the query with provider, trust, runpack or comparator keywords to target guidance.",
    ]);
    expect(headings(searchDocs(mixed, { query: "", max_sections: 2n }))).toEqual(["0 r1/R1", "1 o/O"]);
  });

  it("splits at ## and ### headings only, outside code fences", () => {
    const sections = splitSections(
      doc("d", "pattern", "# T\nintro\r\n## A\na\n### B\n```sh\n## not a heading\n```\n#### C\nc\n##\n## D"),
    );
    expect(sections).toEqual([
      { heading: "T", content: "# T\nintro" },
      { heading: "A", content: "a" },
      { heading: "B", content: "```sh\n## not a heading\n```\n#### C\nc\n##" },
      { heading: "D", content: "" },
    ]);
  });

  it("serializes ranks as JSON integers", () => {
    const result = searchDocs(widgets, { query: "setup", max_sections: 1n });
    expect(compactJson(result)).toBe(
      '{"sections":[{"rank":0,"doc_id":"alpha","doc_title":"Alpha","doc_role":"pattern","heading":"Widget setup",' +
        '"content":"Configure the widget."}],"docs_covered":[{"doc_id":"alpha","doc_title":"Alpha","doc_role":"pattern"}],' +
        '"suggested_followups":["For behaviour that differs from the reference implementation, search the differences ' +
        'doc.","For conceptual grounding, query the architecture: JSON model, control plane, evidence, runpacks.",' +
        '"For provider, trust lane or disclosure details, search the providers doc."]}',
    );
  });

  it("decodes tool input with u32 max_sections", () => {
    expect(DocsSearchRequest.parse({ query: "q", max_sections: 4n, extra: 1n })).toEqual({
      query: "q",
      max_sections: 4n,
    });
    expect(DocsSearchRequest.safeParse({ query: "q", max_sections: -1n }).success).toBe(false);
    expect(DocsSearchRequest.safeParse({ max_sections: 1n }).success).toBe(false);
  });
});
