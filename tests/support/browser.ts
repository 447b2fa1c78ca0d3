/**
 * Headless Debian Chromium for browser tests, driven by playwright-core (which brings no browser
 * of its own: `.ci/run` installs Debian's `chromium`). `withBrowser` starts it on a fresh, empty
 * profile dir and closes it and removes the dir in a `finally`.
 *
 * @example
 * ```ts
 * Deno.test({ name: "…", ignore: CHROMIUM_MISSING !== null }, async () => {
 *   await withBrowser(async (page) => {
 *     await page.goto(url);
 *   });
 * });
 * ```
 *
 * @module
 */
import { chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Why browser tests cannot run here, or null when Chromium is installed. */
export const CHROMIUM_MISSING: string | null = await Deno.stat(CHROMIUM).then(
  () => null,
  () => `${CHROMIUM} is missing: install Debian's chromium (.ci/run does it as root)`,
);
if (CHROMIUM_MISSING !== null) console.warn(`browser tests skipped: ${CHROMIUM_MISSING}`);

/**
 * Flags known to work on these machines: no sandbox (root), no GPU, and none of Chromium's own
 * network traffic, which the closed network would refuse.
 */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Runs `fn` with a page of a fresh headless Chromium; always closes it and removes its profile. */
export async function withBrowser(fn: (page: Page) => Promise<void>): Promise<void> {
  const profile = await Deno.makeTempDir({ prefix: "tickraft-chromium-" });
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1200, height: 900 },
    });
    try {
      await fn(context.pages()[0] ?? await context.newPage());
    } finally {
      await context.close();
    }
  } finally {
    await Deno.remove(profile, { recursive: true });
  }
}
