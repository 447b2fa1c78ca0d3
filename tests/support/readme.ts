/** The README's Markdown tables, for tests that check them against the code. */
import assert from "node:assert/strict";

const README = await Deno.readTextFile(new URL("../../README.md", import.meta.url));

/** Rows of the Markdown table under `## heading`, as arrays of cell texts (header row left out). */
export function tableUnder(heading: string): string[][] {
  const section = README.split(/^## /m).find((s) => s.startsWith(heading));
  assert.ok(section !== undefined, `README has a "## ${heading}" section`);
  return section.split("\n")
    .filter((line) => line.startsWith("|") && !/^\|\s*-/.test(line))
    .slice(1)
    .map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));
}

/** A cell without its backquotes. */
export const unquote = (cell: string) => cell.replace(/`/g, "");

/** The API table's routes as `METHOD /path/{param}` (query hints such as `?q=` dropped). */
export function documentedRoutes(): string[] {
  const routes = tableUnder("API").map((r) => `${r[0]} ${unquote(r[1]).replace(/\?.*$/, "")}`);
  return [...new Set(routes)].sort();
}
