/**
 * The layout keeps its shape: imports in src/ point one way, down the layers below, and no
 * module imports itself through others (no cycles). docs/architecture.md draws the same layers.
 *
 * A folder (or a top-level file) may import its own folder and the layers below it; two places in
 * one layer never import each other. Type-only imports count too: they are dependencies of the
 * design even when they vanish at run time.
 */
import assert from "node:assert/strict";

/** From the bottom up. */
const LAYERS: readonly (readonly string[])[] = [
  ["prng.ts", "clock.ts", "logger.ts", "errors.ts", "faults.ts", "config.ts", "runtime.ts"],
  ["raft", "placement", "autoscale"],
  ["db"],
  ["log"],
  ["scheduler", "cluster"],
  ["workers"],
  ["http"],
  ["console", "cli", "agent"],
  ["node"],
  ["main.ts"],
];

const SRC = new URL("../src/", import.meta.url);
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/gm;

/** Every .ts/.tsx file under src/, as a path relative to src/. */
async function sources(dir = SRC, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = prefix + entry.name;
    if (entry.isDirectory) out.push(...await sources(new URL(`${entry.name}/`, dir), `${path}/`));
    else if (/\.tsx?$/.test(entry.name)) out.push(path);
  }
  return out;
}

/** The relative imports of `file` (paths relative to src/). */
async function importsOf(file: string): Promise<string[]> {
  // Block comments hold examples (`import { place } from "./mod.ts"`) that are not imports.
  const text = (await Deno.readTextFile(new URL(file, SRC))).replace(/\/\*[\s\S]*?\*\//g, "");
  const found: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2];
    const url = new URL(spec, new URL(file, SRC));
    found.push(decodeURIComponent(url.pathname.slice(SRC.pathname.length)));
  }
  return found;
}

/** The place a file belongs to: its top folder, or the file itself at the top. */
const placeOf = (file: string) => file.includes("/") ? file.slice(0, file.indexOf("/")) : file;

function layerOf(place: string): number {
  const layer = LAYERS.findIndex((places) => places.includes(place));
  assert.ok(layer >= 0, `src/${place} is in no layer of tests/architecture_test.ts: add it`);
  return layer;
}

const graph = new Map<string, string[]>();
for (const file of await sources()) graph.set(file, await importsOf(file));

Deno.test("imports in src/ point down the layers, never up or across", () => {
  const wrong: string[] = [];
  for (const [file, imports] of graph) {
    const from = placeOf(file);
    for (const target of imports) {
      const to = placeOf(target);
      if (to === from) continue;
      if (layerOf(to) >= layerOf(from)) wrong.push(`src/${file} imports src/${target}`);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("src/ has no import cycle", () => {
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      cycles.push([...path.slice(path.indexOf(file)), file].join(" → "));
      return;
    }
    state.set(file, "open");
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, "done");
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(cycles, []);
});

Deno.test("the import reader sees every kind of import", async () => {
  const imports = await importsOf("main.ts");
  assert.ok(imports.includes("cli/cli.ts"), "a static import");
  assert.ok(imports.includes("node/node.ts"), "a dynamic import");
  assert.ok(imports.includes("faults.ts"), "a type-only import");
});
