// Another origin's page against the dev server, in Chromium (a cross-site page): the one request a
// page may send anywhere without a preflight, a "simple" text/plain POST, does not reach the
// broadcaster through the Invoke API; the dev console's own invocations (console.test.mjs) do.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setUp, mintToken, broadcast, openPage, startClient, waitSubscribed, uuid } from "./harness.mjs";

const env = setUp();

/** The text of every direct message the page's sockets received, in order. */
const directs = (page) =>
  page.evaluate(() => window.wire.sockets.flatMap((s) => s.got.filter((f) => f.type == "direct_message").map((f) => f.data.text)));

test("a page on another origin cannot inject a direct message through the Invoke API", async () => {
  const user = uuid();
  const project = uuid();
  const { page } = await openPage(env.browser, env.site.origin, { getToken: () => mintToken(user) });
  await startClient(page, { url: env.server.url }, [project]);
  await waitSubscribed(page, [project]);
  assert.notEqual(new URL(env.site.origin).port, new URL(env.server.http).port, "the page is cross-origin");

  // The browser sends it (no-cors: the page cannot read the answer, but the request goes out).
  const injected = await page.evaluate(
    async ({ http, user }) => {
      const res = await fetch(`${http}/2015-03-31/functions/broadcaster/invocations`, {
        method: "POST",
        mode: "no-cors",
        headers: { "content-type": "text/plain" },
        body: JSON.stringify({ user_id: user, type: "direct_message", data: { text: "injected" } }),
      });
      return res.type;
    },
    { http: env.server.http, user },
  );
  assert.equal(injected, "opaque", "the request was sent and answered");

  // The server answered that request before this one was sent, and a synchronous invocation
  // answers after its fan-out: had the injection been delivered, it would arrive first.
  const marker = await broadcast(env.server, { user_id: user, type: "direct_message", data: { text: "marker" } });
  assert.equal(marker.delivered, 1);
  await page.waitForFunction(
    () => window.wire.sockets.some((s) => s.got.some((f) => f.type == "direct_message")),
    null,
    { timeout: 10000, polling: 20 },
  );
  assert.deepEqual(await directs(page), ["marker"]);
  await page.close();
});
