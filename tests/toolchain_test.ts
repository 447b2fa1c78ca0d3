/**
 * Bun runs the same sources as Deno but reads no import map: it resolves their packages from
 * toolchain/node_modules (the `./bun` launcher). Those must be the versions deno.json pins, or the
 * two runtimes run different code.
 */
import assert from "node:assert/strict";

const deno_json = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
const toolchain = JSON.parse(
  await Deno.readTextFile(new URL("../toolchain/package.json", import.meta.url)),
);

Deno.test("toolchain/package.json pins every package src/ imports at deno.json's version", async () => {
  const imports = deno_json.imports as Record<string, string>;
  const dependencies = toolchain.dependencies as Record<string, string>;
  const used = new Set<string>();
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) await walk(new URL(`${entry.name}/`, dir));
      else if (/\.tsx?$/.test(entry.name)) {
        const text = await Deno.readTextFile(new URL(entry.name, dir));
        for (const m of text.matchAll(/from\s+"([^".][^"]*)"/g)) {
          if (m[1].startsWith("node:")) continue;
          const parts = m[1].split("/");
          used.add(m[1].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]);
        }
      }
    }
  };
  await walk(new URL("../src/", import.meta.url));
  assert.ok(used.has("hono") && used.has("@libsql/client"), "the import reader finds packages");
  const wrong: string[] = [];
  for (const name of used) {
    const pinned = /^npm:(@?[^@]+)@(.+)$/.exec(imports[name] ?? "")?.[2];
    if (pinned === undefined) wrong.push(`${name}: not in deno.json imports`);
    else if (dependencies[name] !== pinned) {
      wrong.push(`${name}: deno.json ${pinned}, toolchain/package.json ${dependencies[name]}`);
    }
  }
  assert.deepEqual(wrong, []);
});
