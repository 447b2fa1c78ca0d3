/**
 * `deno task compile`: builds `dist/tickraft`, one executable holding the node, its migrations
 * (code in src/db/migrations.ts) and the npm packages it reaches, libSQL's native addon included.
 *
 * `deno compile` copies a runtime binary, `denort`, that it downloads on first use and caches in
 * DENO_DIR. No npm package ships `denort` (the npm `deno` package carries the full CLI only), so
 * where Deno's download server is out of reach this fails with what to do instead: build in the
 * Dockerfile's builder stage, or point DENORT_BIN at a local `denort` of the same Deno version.
 */

/** The permissions of `deno task start`, nothing more (ffi: libSQL is a Node-API addon). */
export const PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
];

const ROOT = new URL("..", import.meta.url);
const ENTRY = "src/main.ts";
export const OUTPUT = "dist/tickraft";

/**
 * Where `deno compile` will take `denort` from, or why it has none; `download` tells whether it
 * will still try to download it (it does unless DENORT_BIN is set).
 */
export type DenortSource =
  | { ok: true; path: string; from: "DENORT_BIN" | "cache" }
  | { ok: false; reason: string; download: boolean };

/** Runs `deno <args>` in the repository root and returns its exit status and output. */
async function deno(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    success: out.success,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

async function denoInfo(): Promise<{ denoDir: string; npmCache: string }> {
  const info = await deno(["info", "--json"]);
  if (!info.success) throw new Error(`deno info --json failed:\n${info.stderr}`);
  return JSON.parse(info.stdout);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The cache file `deno compile` reads before it tries to download `denort`. */
export async function denortCachePath(): Promise<string> {
  const { denoDir } = await denoInfo();
  const zip = `denort-${Deno.build.target}.zip`;
  return `${denoDir}/dl/release/v${Deno.version.deno}/${zip}`;
}

/** DENORT_BIN when set (it must exist), else the cached download, else the reason there is none. */
export async function findDenort(): Promise<DenortSource> {
  const fromEnv = Deno.env.get("DENORT_BIN");
  if (fromEnv !== undefined && fromEnv !== "") {
    if (await isFile(fromEnv)) return { ok: true, path: fromEnv, from: "DENORT_BIN" };
    return {
      ok: false,
      reason: `DENORT_BIN is set to ${fromEnv}, which is not a file`,
      download: false,
    };
  }
  const cached = await denortCachePath();
  if (await isFile(cached)) return { ok: true, path: cached, from: "cache" };
  return {
    ok: false,
    reason: `DENORT_BIN is not set and ${cached} is not cached`,
    download: true,
  };
}

/**
 * Folders to leave out of the binary. bintrees (a prom-client dependency) ships `test/perf/100k`,
 * an extensionless file of 100,000 signed numbers; `deno compile` 2.9.6 parses it as JavaScript
 * (one expression of 100,000 terms) and dies with a stack overflow. The tests are not needed.
 */
async function excludedFolders(npmCache: string): Promise<string[]> {
  const lock = JSON.parse(await Deno.readTextFile(new URL("deno.lock", ROOT)));
  const versions = Object.keys(lock.npm ?? {})
    .filter((key) => key.startsWith("bintrees@"))
    .map((key) => key.slice("bintrees@".length).split("_")[0]);
  const folders: string[] = [];
  for await (const registry of Deno.readDir(npmCache)) {
    if (!registry.isDirectory) continue;
    for (const version of versions) {
      folders.push(`${npmCache}/${registry.name}/bintrees/${version}/test`);
    }
  }
  return folders;
}

/** What to do when `denort` cannot be had; printed on failure. */
export function denortHelp(reason: string): string {
  return [
    `deno compile needs denort, the Deno ${Deno.version.deno} runtime for ${Deno.build.target},`,
    `and cannot get it here: ${reason}.`,
    "It comes only from Deno's download server (no npm package ships it). Do one of:",
    "  - build the image: `docker build -t tickraft .` (its builder stage runs `deno task compile`",
    "    where the download works); `docker cp` /usr/local/bin/tickraft out of a container of it",
    "    if you want the binary itself;",
    `  - set DENORT_BIN to a local denort of Deno ${Deno.version.deno} for ${Deno.build.target}`,
    `    (unzipped from the release's denort-${Deno.build.target}.zip) and run this again;`,
    "  - run the node without a binary: `./deno task start`.",
  ].join("\n");
}

/** Compiles `src/main.ts` to `output`; returns the failure text, or null on success. */
export async function compile(output: string): Promise<string | null> {
  const denort = await findDenort();
  if (!denort.ok && !denort.download) return denortHelp(denort.reason);
  await Deno.mkdir(new URL(output.replace(/[^/]*$/, ""), ROOT), { recursive: true });
  const install = await deno(["install", "--entrypoint", ENTRY]);
  if (!install.success) return `fetching the npm packages failed:\n${install.stderr}`;
  const { npmCache } = await denoInfo();
  const excludes = (await excludedFolders(npmCache)).flatMap((path) => ["--exclude", path]);
  const result = await deno([
    "compile",
    ...PERMISSIONS,
    "--exclude-unused-npm",
    ...excludes,
    "--output",
    output,
    ENTRY,
  ]);
  if (result.success) return null;
  if (/Setting up base binary|Could not find denort/.test(result.stderr)) {
    const cause = result.stderr.split("\n").find((line) => /error sending request/.test(line));
    const reason = cause?.replace(/^\s*\d+:\s*/, "") ?? "the download failed";
    return `${denortHelp(reason)}\n\ndeno said:\n${result.stderr}`;
  }
  return `deno compile failed:\n${result.stderr}`;
}

if (import.meta.main) {
  console.log(`compiling ${ENTRY} to ${OUTPUT} (Deno ${Deno.version.deno}, ${Deno.build.target})`);
  const failure = await compile(OUTPUT);
  if (failure !== null) {
    console.error(`tickraft compile: ${failure}`);
    Deno.exit(1);
  }
  console.log(`built ${OUTPUT}; run it with: ${OUTPUT} --help`);
}
