/**
 * The peer servers the benchmarks start (redis-server, etcd) come from Debian packages: find a
 * server's version, and install its package when it is missing and the benchmark runs as root.
 *
 * @module
 */

/** What {@link ensureDebianPackage} looks for and installs. */
export interface DebianTool {
  /** The command on PATH, e.g. `etcd`. */
  command: string;
  /** The Debian package that provides it, e.g. `etcd-server`. */
  package_name: string;
  /** Finds the version in `<command> --version` (first group). */
  version_pattern: RegExp;
  /** What the user can do instead, for the error when it is missing. */
  install_hint: string;
}

/**
 * The version `<command> --version` prints (the first group of `pattern`, "unknown" when it does
 * not match), or undefined when the command is not installed or fails.
 */
export async function toolVersion(command: string, pattern: RegExp): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(command, { args: ["--version"] }).output();
    if (!out.success) return undefined;
    return pattern.exec(new TextDecoder().decode(out.stdout))?.[1] ?? "unknown";
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function run(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, { args, stdout: "inherit", stderr: "inherit" })
    .output();
  if (!out.success) throw new Error(`${command} ${args.join(" ")} failed (exit ${out.code})`);
}

/**
 * Makes sure `tool.command` is on PATH, installing its Debian package with apt-get when running
 * as root; returns its version. Throws with the install hint when it is missing otherwise.
 */
export async function ensureDebianPackage(
  tool: DebianTool,
  log: (line: string) => void,
): Promise<string> {
  const found = await toolVersion(tool.command, tool.version_pattern);
  if (found !== undefined) return found;
  if (Deno.uid() !== 0) throw new Error(`${tool.command} is missing: ${tool.install_hint}`);
  log(`${tool.command} is missing; installing Debian's ${tool.package_name} package`);
  await run("apt-get", ["update", "-qq"]);
  await run("apt-get", ["install", "-y", "-qq", tool.package_name]);
  const installed = await toolVersion(tool.command, tool.version_pattern);
  if (installed === undefined) {
    throw new Error(`${tool.command} is still missing after apt-get: ${tool.install_hint}`);
  }
  return installed;
}
