/** The console on a node with API tokens: sign in once, then the token rides in a cookie. */
import assert from "node:assert/strict";
import { withNode } from "../support/node.ts";

const ADMIN = "console-admin-token-0123456789";
const READ = "console-read-token-0123456789";

async function signIn(url: string, token: string): Promise<string | null> {
  const response = await fetch(`${url}/console/login`, {
    method: "POST",
    body: new URLSearchParams({ token }),
    redirect: "manual",
  });
  await response.body?.cancel();
  assert.equal(response.status, 303);
  const cookie = response.headers.get("set-cookie");
  if (cookie === null) return null;
  assert.match(cookie, /HttpOnly/i);
  assert.match(cookie, /SameSite=Strict/i);
  return cookie.split(";")[0];
}

Deno.test("console with API tokens: redirect to sign-in, cookie sign-in, read-only stays read-only", async () => {
  await withNode({ api_tokens_admin: [ADMIN], api_tokens_read: [READ] }, async (t) => {
    const anonymous = await fetch(`${t.url}/console`, { redirect: "manual" });
    await anonymous.body?.cancel();
    assert.equal(anonymous.status, 303);
    assert.equal(anonymous.headers.get("location"), "/console/login");

    const login = await fetch(`${t.url}/console/login`);
    assert.equal(login.status, 200);
    assert.match(await login.text(), /API token/);

    const wrong = await signIn(t.url, "not-a-token-of-this-node");
    const refused = await fetch(`${t.url}/console`, {
      headers: { cookie: wrong! },
      redirect: "manual",
    });
    await refused.body?.cancel();
    assert.equal(refused.headers.get("location"), "/console/login?error=invalid");

    const admin = await signIn(t.url, ADMIN);
    const overview = await fetch(`${t.url}/console`, { headers: { cookie: admin! } });
    assert.equal(overview.status, 200);
    assert.match(await overview.text(), /Tickraft/);
    const created = await fetch(`${t.url}/console/jobs`, {
      method: "POST",
      headers: { cookie: admin! },
      body: new URLSearchParams({ type: "cron", schedule: "0 0 1 1 *", name: "via-console" }),
      redirect: "manual",
    });
    await created.body?.cancel();
    assert.equal(created.status, 303, "an admin cookie may write");

    const reader = await signIn(t.url, READ);
    const page = await fetch(`${t.url}/console/jobs`, { headers: { cookie: reader! } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /via-console/);
    const write = await fetch(`${t.url}/console/jobs`, {
      method: "POST",
      headers: { cookie: reader! },
      body: new URLSearchParams({ type: "cron", schedule: "0 0 1 1 *", name: "refused" }),
      redirect: "manual",
    });
    await write.body?.cancel();
    assert.equal(write.status, 403, "a read-only cookie cannot write");

    const api = await fetch(`${t.url}/jobs`, { headers: { cookie: admin! } });
    await api.body?.cancel();
    assert.equal(api.status, 401, "the cookie opens the console only, not the API");
  });
});
