import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DocsCatalog } from "../../src/server/docs/catalog.js";
import { searchDocs } from "../../src/server/docs/search.js";
import { toolDefinitions } from "../../src/server/tools/catalog.js";
import { renderToolDocs, toolDocsPath } from "../../src/server/tools/docs.js";

/** The lines of one tool's section, from its `## name` heading to the next tool's. */
function sectionOf(markdown: string, name: string): string[] {
  const lines = markdown.split("\n");
  const start = lines.indexOf(`## ${name}`);
  expect(start, `## ${name}`).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((line, index) => index > start && line.startsWith("## "));
  return lines.slice(start, end === -1 ? undefined : end);
}

describe("docs/TOOLS.md", () => {
  const rendered = renderToolDocs();

  it("is up to date (run `npm run docs:tools`)", () => {
    expect(readFileSync(toolDocsPath(), "utf8"), "docs/TOOLS.md is stale: run `npm run docs:tools`").toBe(rendered);
  });

  it("has a section for every tool tools/list serves, in catalog order", () => {
    const headings = rendered.split("\n").filter((line) => line.startsWith("## "));
    expect(headings).toEqual(toolDefinitions().map((tool) => `## ${tool.name}`));
  });

  it("marks required input fields as required", () => {
    const definition = toolDefinitions().find((tool) => tool.name === "scenario_define");
    expect(definition?.inputSchema.required).toEqual(["spec"]);
    const section = sectionOf(rendered, "scenario_define");
    expect(section).toContain("| `spec` | object (ScenarioSpec) | yes | Scenario specification to register. |");
  });

  it("marks optional input fields as not required and summarizes nullable and ranged types", () => {
    const section = sectionOf(rendered, "schemas_list");
    expect(section).toContain("| `tenant_id` | integer ≥ 1 | yes | Tenant identifier. |");
    expect(section).toContain("| `limit` | integer 1..=1000 | no | Maximum number of records to return. |");
    expect(section).toContain("| `cursor` | string or null | no | Pagination cursor. |");
  });

  it("is served by resources/list and the docs search", () => {
    const catalog = DocsCatalog.fromConfig();
    const entry = catalog.docs.find((doc) => doc.uri === "decision-gate://docs/tools");
    expect(entry).toMatchObject({ doc_id: "tools", title: "Tool reference", role: "ontology" });
    expect(entry?.markdown).toBe(readFileSync(toolDocsPath(), "utf8"));
    const listing = catalog.resourcesList() as { resources: Array<Record<string, string>> };
    expect(listing.resources.map((resource) => resource.uri)).toContain("decision-gate://docs/tools");
    const result = searchDocs(catalog, { query: "provider_check_schema_get params_required" });
    expect(result.sections.map((section) => section.doc_id)).toContain("tools");
  });
});
