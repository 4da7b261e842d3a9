// The React Query binding on a real @tanstack/react-query QueryClient in the page (bundled with
// esbuild together with the built client and binding): each event broadcast through the dev
// server invalidates exactly the expected queries, and no others.
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "esbuild";
import { setUp, mintToken, broadcast, openPage, waitSubscribed, uuid, WEB } from "./harness.mjs";

const env = setUp({
  files: async () => {
    const bundle = await build({
      stdin: {
        contents: [
          'export { QueryClient } from "@tanstack/react-query";',
          'export { createRealtime } from "./dist/index.js";',
          'export { bindQueryClient } from "./dist/react-query.js";',
        ].join("\n"),
        resolveDir: WEB,
        loader: "js",
      },
      bundle: true,
      format: "esm",
      platform: "browser",
      define: { "process.env.NODE_ENV": '"production"' },
      write: false,
      logLevel: "warning",
    });
    return { "/rq.js": bundle.outputFiles[0].text };
  },
});

test("bindQueryClient invalidates the expected keys of a real QueryClient", async () => {
  const { server, browser, site } = env;
  const user = uuid();
  const P = uuid();
  const Q = uuid();
  const { page, errors } = await openPage(browser, site.origin, { getToken: () => mintToken(user) });
  const keys = [
    ["message", P],
    ["task", P],
    ["task", P, "t1"],
    ["task", P, "t2"],
    ["sprint", P],
    ["sprint", P, "s1"],
    ["project_members", P],
    ["project", P],
    ["search", { projectId: P }],
    ["task", Q],
    ["message", Q],
    ["direct_message"],
  ];
  await page.evaluate(
    async ({ url, P, keys }) => {
      const { QueryClient, createRealtime, bindQueryClient } = await import("/rq.js");
      const qc = new QueryClient();
      const rt = createRealtime({ url, getToken: () => window.getToken() });
      bindQueryClient(rt, qc);
      const log = (window.log = { events: { [P]: [] }, resets: [] });
      rt.onReset((p) => log.resets.push(p));
      rt.subscribe(P, (e) => log.events[P].push(e));
      // Every key fresh again (setQueryData clears isInvalidated), then after an event: which are invalidated.
      window.fresh = () => keys.forEach((k, i) => qc.setQueryData(k, { i }));
      window.invalidated = () => keys.filter((k) => qc.getQueryState(k).isInvalidated);
      window.fresh();
    },
    { url: server.url, P, keys },
  );
  await waitSubscribed(page, [P]);

  const steps = [
    [{ project_id: P, type: "message_created", data: { text: "hi" } }, [["message", P]]],
    [{ project_id: P, type: "task_updated", data: { id: "t1" } }, [["task", P], ["task", P, "t1"], ["task", P, "t2"]]],
    // A trigger payload: the broadcaster turns it into a cache_invalidate of its resource.
    [
      { resource: "sprint", id: "s1", action: "UPDATE", project_id: P, timestamp: new Date().toISOString() },
      [["sprint", P], ["sprint", P, "s1"]],
    ],
    [{ project_id: P, type: "member_added", data: { user_id: uuid() } }, [["project_members", P]]],
    [{ project_id: P, type: "project_updated", data: {} }, [["project", P]]],
    // resync of one project: every query whose key names it, nested ones included.
    [{ project_id: P, type: "resync", data: {} }, keys.filter((k) => JSON.stringify(k).includes(P))],
    // resync to everyone: every query.
    [{ project_id: "*", type: "resync" }, keys],
  ];
  let delivered = 0;
  for (const [body, expected] of steps) {
    await page.evaluate(() => window.fresh());
    const r = await broadcast(server, body);
    assert.equal(r.delivered, 1, `${JSON.stringify(body)}: ${JSON.stringify(r)}`);
    delivered++;
    await page.waitForFunction(({ P, n }) => window.log.events[P].length == n, { P, n: delivered }, { polling: 20 });
    const got = await page.evaluate(() => window.invalidated());
    assert.deepEqual(got, expected, `after ${JSON.stringify(body)}`);
  }
  const types = await page.evaluate((P) => window.log.events[P].map((e) => e.type), P);
  assert.deepEqual(types, ["message_created", "task_updated", "cache_invalidate", "member_added", "project_updated", "resync", "resync"]);
  assert.deepEqual(errors, []);
  await page.close();
});
