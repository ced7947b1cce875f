import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * The layers of src/, lowest first. A module imports only from its own layer or a lower one, and no chain of
 * imports leads back to where it started. A module's layer is its first folder under src/, so `src/core/runpack`
 * (the runpack format and its verification, free of I/O) is part of core, while `src/runpack` (the file system,
 * signing keys and the HTML report around it) is the runpack layer. A new folder must be placed here before it
 * can hold code.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["json", "net"],
  ["core"],
  ["evidence", "store"],
  ["actions"],
  ["runpack"],
  ["config"],
  ["server"],
  ["cli"],
];

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/** Module path (relative to the repository, e.g. `src/core/errors.ts`) to the src/ modules it imports. */
type ImportGraph = Map<string, string[]>;

/**
 * Every relative module an import names: `import … from`, `export … from`, `import()` with a string literal and
 * `typeof import()`, type-only forms included (they tie the modules together just the same).
 */
function importedSpecifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

function resolveImport(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  return normalize(join(dirname(from), specifier.replace(/\.js$/, ".ts")));
}

function srcImportGraph(): ImportGraph {
  const graph: ImportGraph = new Map();
  const files = readdirSync(SRC, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts"));
  for (const file of files.sort()) {
    const module = join("src", file);
    const targets = importedSpecifiers(readFileSync(join(SRC, file), "utf8"))
      .map((specifier) => resolveImport(module, specifier))
      .filter((target): target is string => target?.startsWith("src/") === true);
    graph.set(module, [...new Set(targets)]);
  }
  return graph;
}

function layerOf(module: string): number {
  const folder = module.split("/").length > 2 ? module.split("/")[1] : undefined;
  return LAYERS.findIndex((layer) => folder !== undefined && layer.includes(folder));
}

function describeLayer(index: number): string {
  return index < 0 ? "no layer" : `layer ${index + 1} (${LAYERS[index]?.join("/")})`;
}

/** One line per import that goes to a higher layer, and per module outside every layer. */
function layerViolations(graph: ImportGraph): string[] {
  const violations: string[] = [];
  for (const [module, targets] of graph) {
    const layer = layerOf(module);
    if (layer < 0) {
      violations.push(`${module} is in no layer: add its folder to LAYERS in test/architecture/layers.test.ts`);
      continue;
    }
    for (const target of targets) {
      const targetLayer = layerOf(target);
      if (targetLayer > layer || targetLayer < 0) {
        violations.push(`${module} [${describeLayer(layer)}] imports ${target} [${describeLayer(targetLayer)}]`);
      }
    }
  }
  return violations;
}

/** One line per import cycle (a strongly connected group of modules), showing one loop through it. */
function importCycles(graph: ImportGraph): string[] {
  return stronglyConnected(graph)
    .filter((group) => group.length > 1 || graph.get(group[0] as string)?.includes(group[0] as string))
    .map((group) => {
      const loop = loopThrough(graph, new Set(group), group.sort()[0] as string);
      const others = group.filter((module) => !loop.includes(module));
      return others.length === 0 ? loop.join(" → ") : `${loop.join(" → ")} (also in this cycle: ${others.join(", ")})`;
    });
}

/** Tarjan's algorithm, iterative so that a deep import chain cannot overflow the stack. */
function stronglyConnected(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const groups: string[][] = [];
  let counter = 0;
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    const work: { module: string; next: number }[] = [{ module: root, next: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { module: string; next: number };
      const targets = graph.get(frame.module) ?? [];
      if (frame.next < targets.length) {
        const target = targets[frame.next++] as string;
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter++);
          stack.push(target);
          onStack.add(target);
          work.push({ module: target, next: 0 });
        } else if (onStack.has(target)) {
          low.set(frame.module, Math.min(low.get(frame.module) as number, index.get(target) as number));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) {
        low.set(parent.module, Math.min(low.get(parent.module) as number, low.get(frame.module) as number));
      }
      if (low.get(frame.module) === index.get(frame.module)) {
        const group: string[] = [];
        let member: string;
        do {
          member = stack.pop() as string;
          onStack.delete(member);
          group.push(member);
        } while (member !== frame.module);
        groups.push(group);
      }
    }
  }
  return groups;
}

/** The shortest import path from `start` back to itself inside `group`. */
function loopThrough(graph: ImportGraph, group: Set<string>, start: string): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const module = queue.shift() as string;
    for (const target of graph.get(module) ?? []) {
      if (!group.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let step: string | undefined = module; step !== start; step = previous.get(step as string)) {
          path.unshift(step as string);
        }
        return [start, ...path];
      }
      if (!previous.has(target)) {
        previous.set(target, module);
        queue.push(target);
      }
    }
  }
  return [start];
}

describe("architecture", () => {
  const graph = srcImportGraph();

  it("reads every kind of import, type-only ones included", () => {
    const source = [
      'import type { A } from "./a.js";',
      'import { type B, c } from "../b.js";',
      'export type { D } from "./d.js";',
      'export * from "./e.js";',
      'const f = await import("./f.js");',
      'type G = typeof import("./g.js");',
      '// import "./commented-out.js";',
      "const text = 'import \"./in-a-string.js\"';",
      'import { readFileSync } from "node:fs";',
    ].join("\n");
    expect(importedSpecifiers(source)).toEqual([
      "./a.js",
      "../b.js",
      "./d.js",
      "./e.js",
      "./f.js",
      "./g.js",
      "node:fs",
    ]);
    expect(graph.get("src/server/app.ts")).toContain("src/config/schema.ts");
    expect(graph.size).toBeGreaterThan(100);
  });

  it("reports an upward import, a module outside the layers and an import cycle", () => {
    const sample: ImportGraph = new Map([
      ["src/json/parse.ts", ["src/core/errors.ts"]],
      ["src/core/errors.ts", []],
      ["src/elsewhere/x.ts", []],
      ["src/core/a.ts", ["src/core/b.ts"]],
      ["src/core/b.ts", ["src/core/c.ts"]],
      ["src/core/c.ts", ["src/core/a.ts", "src/json/parse.ts"]],
    ]);
    expect(layerViolations(sample)).toEqual([
      "src/json/parse.ts [layer 1 (json/net)] imports src/core/errors.ts [layer 2 (core)]",
      "src/elsewhere/x.ts is in no layer: add its folder to LAYERS in test/architecture/layers.test.ts",
    ]);
    expect(importCycles(sample)).toEqual(["src/core/a.ts → src/core/b.ts → src/core/c.ts → src/core/a.ts"]);
  });

  it("keeps every import of src/ in its own layer or a lower one", () => {
    expect(layerViolations(graph)).toEqual([]);
  });

  it("has no import cycle in src/", () => {
    expect(importCycles(graph)).toEqual([]);
  });
});
