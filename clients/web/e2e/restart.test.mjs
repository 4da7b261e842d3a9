// The dev server killed (SIGKILL: no close frames) and restarted on the same port: the page keeps
// retrying with backoff, reconnects within the bound of its current backoff once the server is
// back, and reports `reset` (the restarted memory store's event stream has a new epoch).
import { test } from "node:test";
import assert from "node:assert/strict";
import { setUp, startDevServer, mintToken, broadcast, openPage, startClient, waitSubscribed, uuid } from "./harness.mjs";

const BASE_MS = 500; // the client's default backoff: random() × min(20 s, 0.5 s × 2^attempt)
const MAX_MS = 20000;
const SLACK_MS = 1500; // handshake, token minting and subscribe on a busy machine

const env = setUp();

test("server killed and restarted: reconnect within the backoff bound, onReset, the new stream delivered", async () => {
  const { browser, site } = env;
  let { server } = env;
  const user = uuid();
  const project = uuid();
  const { page, errors } = await openPage(browser, site.origin, { getToken: () => mintToken(user) });
  await startClient(page, { url: server.url }, [project]);
  await waitSubscribed(page, [project]);

  for (let n = 0; n < 3; n++) await broadcast(server, { project_id: project, type: "task_updated", data: { n } });
  await page.waitForFunction((p) => window.log.events[p].length == 3, project, { polling: 20 });

  const port = server.port;
  await server.kill();
  // Wait until the client has failed at least twice more against the dead port, so its backoff
  // has grown past the first step.
  await page.waitForFunction(() => window.wire.sockets.filter((s) => s.opened == null && s.closed != null).length >= 2, null, {
    timeout: 10000,
    polling: 20,
  });
  // env.server: the hook after the tests stops the server running then, this one.
  server = env.server = await startDevServer({ port });
  const back = Date.now();

  await page.waitForFunction((p) => window.log.resets.some((r) => r.p == p), project, { timeout: MAX_MS + SLACK_MS, polling: 20 });
  const { log, wire } = await page.evaluate(() => ({ log: window.log, wire: window.wire }));
  const ok = wire.sockets.findLast((s) => s.opened != null);
  const before = wire.sockets.slice(0, ok.i);
  const failures = before.length; // the original socket's drop, then every attempt that failed
  assert.ok(before.every((s) => s.closed != null), "every earlier socket ended");
  const bound = Math.min(MAX_MS, BASE_MS * 2 ** (failures - 1));
  // The successful attempt (its getToken call) was scheduled by the last failure, at most
  // `bound` later (plus timer lateness).
  const started = log.tokenCalls.findLast((t) => t <= ok.created);
  const waited = started - before.at(-1).closed;
  assert.ok(waited <= bound + 250, `attempt ${failures + 1} started ${waited} ms after the last failure, bound ${bound} ms`);
  const reconnected = ok.opened - back;
  assert.ok(reconnected <= bound + SLACK_MS, `open ${reconnected} ms after the server was back, backoff bound ${bound} ms`);

  // It resumed with since/epoch and was told the old stream is gone.
  const sub = ok.sent.find((f) => f.action == "subscribe");
  assert.equal(sub.since, 3);
  const reply = ok.got.find((f) => f.type == "subscribed");
  const first = wire.sockets[0].got.find((f) => f.type == "subscribed");
  assert.ok(reply.reset === true || reply.epoch != first.epoch, `reply ${JSON.stringify(reply)}`);
  assert.deepEqual(log.resets.map((r) => r.p), [project]);
  assert.equal(log.statuses.at(-1).s, "open");

  // The new stream starts again at seq 1, which the client must not drop as old.
  const r = await broadcast(server, { project_id: project, type: "task_updated", data: { n: "after" } });
  assert.equal(r.delivered, 1);
  await page.waitForFunction((p) => window.log.events[p].length == 4, project, { polling: 20 });
  const events = await page.evaluate((p) => window.log.events[p].map((e) => [e.seq, e.data.n]), project);
  assert.deepEqual(events, [[1, 0], [2, 1], [3, 2], [1, "after"]]);
  assert.deepEqual(errors.filter((e) => !/WebSocket connection to .* failed/.test(e)), []);
  await page.close();
});
