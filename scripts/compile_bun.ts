/**
 * `deno task compile:bun`: builds `dist/tickraft-bun` with `bun build --compile` (through
 * `Bun.build`, run by the pinned `./bun`): one executable holding Bun, the node, its migrations and
 * the npm packages it reaches, libSQL's native addon included. Unlike `deno compile` it downloads
 * nothing: the Bun runtime it copies is the one running this script.
 *
 * libSQL picks its native package at run time (`require(\`@libsql/${target}\`)`), which the bundler
 * cannot follow: without help the binary fails with `Cannot find module '@libsql/linux-x64-gnu'`.
 * The plugin below rewrites that one `require` to the package of the platform being built for, so
 * the bundler embeds its `.node` file.
 *
 * Usage: `./bun run scripts/compile_bun.ts [output]` (default dist/tickraft-bun).
 */
import process from "node:process";

/** The entry, relative to the repository root (the cwd of `deno task`). */
const ENTRY = "src/main.ts";
export const BUN_OUTPUT = "dist/tickraft-bun";

/** What this script uses of Bun's build API (typed here: Deno's checker has no Bun types). */
interface BunBuildApi {
  version: string;
  resolveSync(specifier: string, from: string): string;
  build(options: {
    entrypoints: string[];
    compile: { outfile: string };
    minify: boolean;
    sourcemap: "none" | "linked";
    jsx: { runtime: "automatic"; importSource: string };
    plugins: BunPlugin[];
  }): Promise<{ success: boolean; logs: unknown[] }>;
}

interface BunPlugin {
  name: string;
  setup(build: {
    onResolve(
      options: { filter: RegExp },
      callback: (args: { path: string; importer: string }) => { path: string } | undefined,
    ): void;
    onLoad(
      options: { filter: RegExp },
      callback: (args: { path: string }) => Promise<{ contents: string; loader: "js" }>,
    ): void;
  }): void;
}

/** The `@libsql/*` native package for this platform (glibc on Linux, as the images use). */
export function libsqlNativePackage(platform: string, arch: string): string {
  const cpu = arch === "x64" ? "x64" : arch === "arm64" ? "arm64" : null;
  if (cpu === null) throw new Error(`no libSQL native package for CPU ${arch}`);
  if (platform === "linux") return `@libsql/linux-${cpu}-gnu`;
  if (platform === "darwin") return `@libsql/darwin-${cpu}`;
  if (platform === "win32" && cpu === "x64") return "@libsql/win32-x64-msvc";
  throw new Error(`no libSQL native package for ${platform}-${arch}`);
}

/** The dynamic `require` in libsql's loader that {@link libsqlNativePlugin} rewrites. */
const NATIVE_REQUIRE = "require(`@libsql/${target}`)";

/** A bundler plugin that names libSQL's native package to the bundler (see the module's text). */
export function libsqlNativePlugin(native: string): BunPlugin {
  return {
    name: "libsql-native",
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/]libsql[\\/]index\.js$/ }, async ({ path }) => {
        const { readFile } = await import("node:fs/promises");
        const source = await readFile(path, "utf8");
        if (!source.includes(NATIVE_REQUIRE)) {
          throw new Error(
            `${path} no longer has ${NATIVE_REQUIRE}: the libsql version changed its loader; ` +
              "update libsqlNativePlugin in scripts/compile_bun.ts",
          );
        }
        return { contents: source.replace(NATIVE_REQUIRE, `require("${native}")`), loader: "js" };
      });
    },
  };
}

/**
 * Bun reads no import map and the bundler ignores NODE_PATH (which `./bun run` uses): the bare
 * imports of src/ resolve from toolchain/node_modules, where the packages deno.json pins are
 * installed. Imports inside node_modules resolve as usual.
 */
export function toolchainPackagesPlugin(bun: BunBuildApi, root: string): BunPlugin {
  const src = `${root}/src/`;
  const packages = `${root}/toolchain/`;
  return {
    name: "toolchain-packages",
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, ({ path, importer }) => {
        if (!importer.startsWith(src) || /^(node|bun):/.test(path)) return undefined;
        return { path: bun.resolveSync(path, packages) };
      });
    },
  };
}

/** Builds the binary at `output`; returns the failure text, or null on success. */
export async function compileBun(output: string): Promise<string | null> {
  const bun = (globalThis as { Bun?: BunBuildApi }).Bun;
  if (bun === undefined) return "scripts/compile_bun.ts runs on Bun: use `deno task compile:bun`";
  const native = libsqlNativePackage(process.platform, process.arch);
  const result = await bun.build({
    entrypoints: [ENTRY],
    compile: { outfile: output },
    minify: true,
    sourcemap: "none",
    // The console's views are Hono JSX (deno.json's compilerOptions; bunfig.toml for `bun run`).
    jsx: { runtime: "automatic", importSource: "hono/jsx" },
    plugins: [toolchainPackagesPlugin(bun, process.cwd()), libsqlNativePlugin(native)],
  });
  return result.success ? null : `bun build --compile failed:\n${result.logs.join("\n")}`;
}

if (import.meta.main) {
  const output = process.argv[2] ?? BUN_OUTPUT;
  console.log(`compiling ${ENTRY} to ${output} (${process.platform}-${process.arch})`);
  const failure = await compileBun(output);
  if (failure !== null) {
    console.error(`tickraft compile:bun: ${failure}`);
    process.exit(1);
  }
  console.log(`built ${output}; run it with: ${output} --help`);
}
