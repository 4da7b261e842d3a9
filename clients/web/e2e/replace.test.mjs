// API Gateway's limits shortened: every connection gets the reconnect hint after 2 s and is cut
// at 4 s, and 2 s without a frame closes it. Across several forced replacements and an idle
// period longer than the idle limit, the page must receive each of 200 events exactly once, in
// seq order per project, without the status ever leaving "open" and without a reset.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setUp, mintToken, broadcast, openPage, startClient, waitSubscribed, uuid } from "./harness.mjs";

const IDLE_S = 2;
const MAX_S = 4; // the hint comes at MAX_S / 2 (the dev server's rule for short durations)
const EVENTS = 200;
const RATE_MS = 30; // one event every 30 ms: the 200 events span several connections

const env = setUp({ args: ["--idle-timeout-s", String(IDLE_S), "--max-duration-s", String(MAX_S)] });

test("200 events across forced replacements and an idle period: each once, in seq order", async () => {
  const { server, browser, site } = env;
  const user = uuid();
  const projects = [uuid(), uuid()];
  const { page, errors } = await openPage(browser, site.origin, { getToken: () => mintToken(user) });
  // Pings under the shortened idle limit, as the default 8 min is under API Gateway's 10.
  await startClient(page, { url: server.url, pingIntervalMs: 700 }, projects);
  await waitSubscribed(page, projects);

  const hints = () =>
    page.evaluate(() => window.wire.sockets.reduce((n, s) => n + s.got.filter((f) => f.type == "reconnect").length, 0));
  const send = async (i) => {
    const p = projects[i % 2];
    // Not asserted one by one: a broadcast that meets only a socket being replaced delivers to
    // nobody, and the page recovers the event with `since`. The page's log is what counts.
    results.push(await broadcast(server, { project_id: p, type: "message_created", data: { n: Math.floor(i / 2), text: `event ${i}` } }));
  };
  const results = [];
  const pace = () => new Promise((r) => setTimeout(r, RATE_MS));

  for (let i = 0; i < EVENTS / 2; i++) await send(i), await pace();
  // The idle period: no event for longer than the idle limit (and across at least one more
  // replacement); only the client's pings keep the sockets open.
  const idleFrom = Date.now();
  const hintsBefore = await hints();
  await page.waitForFunction(
    ({ until, n }) =>
      Date.now() >= until && window.wire.sockets.reduce((k, s) => k + s.got.filter((f) => f.type == "reconnect").length, 0) >= n + 2,
    { until: idleFrom + 1.5 * IDLE_S * 1000, n: hintsBefore },
    { timeout: 20000, polling: 50 },
  );
  for (let i = EVENTS / 2; i < EVENTS; i++) await send(i), await pace();
  // One more event per project after the 200: anything still in flight arrives before it.
  for (const p of projects) await broadcast(server, { project_id: p, type: "message_created", data: { n: "last" } });
  await page.waitForFunction((ps) => ps.every((p) => window.log.events[p].some((e) => e.data.n == "last")), projects, {
    timeout: 20000,
    polling: 50,
  });

  const { log, wire } = await page.evaluate(() => ({ log: window.log, wire: window.wire }));
  for (const p of projects) {
    const events = log.events[p];
    assert.deepEqual(
      events.map((e) => e.data.n),
      [...Array.from({ length: EVENTS / 2 }, (_, n) => n), "last"],
      `project ${p}: every event exactly once, in order`,
    );
    assert.deepEqual(
      events.map((e) => e.seq),
      Array.from({ length: EVENTS / 2 + 1 }, (_, k) => k + 1),
      `project ${p}: seqs 1.. in order`,
    );
    assert.equal(new Set(events.map((e) => e.event_id)).size, events.length);

    const sockets = wire.sockets.filter((s) => s.project == p);
    const hinted = sockets.filter((s) => s.got.some((f) => f.type == "reconnect")).length;
    assert.ok(hinted >= 3, `project ${p}: ${hinted} reconnect hints, want at least 3`);
    assert.ok(sockets.length >= 4, `project ${p}: ${sockets.length} sockets`);
    // Every replacement resumed from the stream: its subscribe carried since and epoch.
    for (const s of sockets.slice(1)) {
      const sub = s.sent.find((f) => f.action == "subscribe");
      assert.equal(typeof sub.since, "number", `socket ${s.i} subscribed without since`);
      assert.equal(typeof sub.epoch, "string");
    }
    // Make-before-break: every socket that ended was closed by the client (1000) after its
    // successor was subscribed; none hit the idle or the duration limit (1001).
    const timeline = sockets.map((s) => ({ i: s.i, created: s.created, opened: s.opened, closed: s.closed, code: s.code, hints: s.got.filter((f) => f.type == "reconnect").length, subscribed: s.got.some((f) => f.type == "subscribed") }));
    for (const s of sockets.filter((s) => s.closed != null)) assert.equal(s.code, 1000, `socket ${s.i} closed with ${s.code}: ${JSON.stringify(timeline)}`);
  }
  assert.deepEqual(log.resets, [], "no reset");
  assert.deepEqual(
    log.statuses.map((x) => x.s),
    ["connecting", "open"],
    "the status never left open once open",
  );
  assert.deepEqual(errors, []);
  await page.close();
});
