import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { decode } from "../../src/core/wire/common.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { buildCatalog, catalogEntries, catalogEntry, type ReferenceContract } from "../../src/server/tools/catalog.js";
import { defineTool } from "../../src/server/tools/tool.js";
import { configDir, runCli } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";

/** The reference's tool contracts, parsed losslessly (as requests are): integers stay exact. */
const TOOLING = parseJson(readFileSync(sharedPath("fixtures/reference/contract/tooling.json"), "utf8")) as Array<
  JsonObject & { name: string; examples: Array<{ description: string; input: JsonValue }> }
>;

const cleanup: string[] = [];
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

describe("the tool table", () => {
  const examples = TOOLING.flatMap((tool) =>
    tool.examples.map((example) => ({ name: tool.name, example: example.description, input: example.input })),
  );

  it("holds an example for every reference tool", () => {
    expect(new Set(examples.map((example) => example.name))).toEqual(new Set(TOOLING.map((tool) => tool.name)));
  });

  it.each(examples)("decodes the reference's example for $name: $example", ({ name, input }) => {
    const tool = catalogEntry(name)?.tool;
    expect(tool, name).toBeDefined();
    expect(() => decode(tool?.args ?? z.never(), input, "arguments")).not.toThrow();
  });

  it("serves the reference's contracts as published, then this project's own tools", () => {
    const served = catalogEntries().map((entry) => entry.definition);
    expect(served.slice(0, TOOLING.length).map(({ name, description }) => ({ name, description }))).toEqual(
      TOOLING.map((tool) => ({ name: tool.name, description: tool.description })),
    );
    expect(served.slice(TOOLING.length).map((definition) => definition.name)).toEqual(["runtime_action_evaluate"]);
  });

  it("derives this project's own input schemas from the zod decoders", () => {
    const schema = catalogEntry("runtime_action_evaluate")?.definition.inputSchema;
    expect(schema).toMatchObject({ type: "object", required: ["receipt", "gate"], additionalProperties: false });
    expect(Object.keys(schema?.properties as object)).toEqual([
      "receipt",
      "gate",
      "stage355",
      "enforce",
      "created_at",
      "receipt_path",
      "gate_path",
    ]);
  });

  describe("refuses records and contracts that do not pair up", () => {
    const contract = (name: string): ReferenceContract => ({
      name,
      description: `${name} (reference)`,
      input_schema: { type: "object" },
      output_schema: { type: "object" },
    });
    const record = (name: string, own = false) =>
      defineTool({
        name,
        args: z.object({}),
        argumentSize: "small",
        contract: own ? { description: name, outputSchema: { type: "object" } } : undefined,
        run: async () => ({}),
      });

    it("pairs them in the reference's order, then the records' own", () => {
      const catalog = buildCatalog([record("own", true), record("b"), record("a")], [contract("a"), contract("b")]);
      expect(catalog.map((entry) => entry.definition.name)).toEqual(["a", "b", "own"]);
      expect(catalog[0]?.definition.description).toBe("a (reference)");
    });

    it.each([
      ["a reference tool without a record", [record("a")], ["a", "b"], "b: no record"],
      ["a record without a contract", [record("a"), record("c")], ["a"], "c: no contract"],
      ["a record restating the reference", [record("a", true)], ["a"], "a: restates the reference"],
      ["two records of one name", [record("a"), record("a")], ["a"], "a: two records"],
    ])("%s", (_case, records, names, problem) => {
      expect(() => buildCatalog(records, names.map(contract))).toThrow(problem);
    });
  });
});

describe("tool names in the configuration", () => {
  it("are checked against the table by config validate, with the loader's message and exit code", async () => {
    const bad = configDir(
      '[server.auth]\nallowed_tools = ["scenario_next", "nope"]\n[server.tools]\ndenylist = ["x"]\n',
    );
    const good = configDir('[server.auth]\nallowed_tools = ["runtime_action_evaluate"]\n');
    cleanup.push(bad, good);
    const refused = await runCli(["config", "validate", "--config", join(bad, "decision-gate.toml")]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      "Failed to load config: invalid config: server.auth.allowed_tools[1]: unknown tool in allowlist: nope; " +
        "server.tools.denylist[0]: unknown tool in server.tools list: x",
    );
    expect(await runCli(["config", "validate", "--config", join(good, "decision-gate.toml")])).toMatchObject({
      code: 0,
      stdout: "Config valid.\n",
    });
  });
});
