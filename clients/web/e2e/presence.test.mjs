// Presence, typing and direct messages: the web client (rt.presence, rt.typing, rt.onDirect) and
// the dev console (#online, #typing, #chat, #dm-*) in Chromium against the real dev server, whose
// presence is on by default (PRESENCE_MAX_SUBSCRIBERS 100). Every wait is on a condition.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setUp, mintToken, broadcast, openPage, startClient, waitSubscribed, uuid } from "./harness.mjs";

const env = setUp();
const WAIT = { timeout: 10000, polling: 20 };
const sorted = (ids) => [...ids].sort();

/**
 * A page where `user`'s client (with `options` besides url) is subscribed to `projects` (their
 * `subscribed` replies in).
 */
async function client(user, projects, options = {}) {
  const { page, errors } = await openPage(env.browser, env.site.origin, { getToken: () => mintToken(user) });
  await startClient(page, { url: env.server.url, ...options }, projects);
  await waitSubscribed(page, projects);
  return { page, errors, user };
}

/** `rt.presence(p).users()` or `rt.typing(p).users()` in the page, sorted. */
const users = (page, kind, p) => page.evaluate(([kind, p]) => window.rt[kind](p).users().sort(), [kind, p]);

/** Resolves when the page's `rt[kind](p).users()` is exactly `want`. */
const waitUsers = (page, kind, p, want) =>
  page.waitForFunction(
    ([kind, p, want]) => JSON.stringify(window.rt[kind](p).users().sort()) == want,
    [kind, p, JSON.stringify(sorted(want))],
    WAIT,
  );

/** Every frame of `type` the page's sockets received. */
const got = (page, type) => page.evaluate((type) => window.wire.sockets.flatMap((s) => s.got.filter((f) => f.type == type)), type);

/** Who the server has on project `p` (the status endpoint). */
let statusToken;
async function status(p) {
  statusToken ||= await mintToken(uuid());
  const res = await fetch(`${env.server.http}/api/v1/projects/${p}/ws/status`, {
    headers: { authorization: `Bearer ${statusToken}` },
  });
  return res.json();
}

/** Polls the status endpoint until `ok(status)` (a condition on the server's state, not a delay). */
async function untilStatus(p, ok, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (let s; !ok((s = await status(p))); ) {
    if (Date.now() > end) throw new Error(`status of ${p} still ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("presence: each user sees the other, one presence per user however many tabs, and leaving is seen", async () => {
  const p = uuid();
  const a = await client(uuid(), [p]);
  // The first subscriber's `online` is itself.
  assert.deepEqual((await got(a.page, "subscribed"))[0].online, [a.user]);
  assert.deepEqual(await users(a.page, "presence", p), [a.user]);
  await a.page.evaluate((p) => {
    window.changes = [];
    window.rt.presence(p).onChange((u) => window.changes.push([...u].sort()));
  }, p);

  // B's reply lists both; A hears of B from a `presence` frame.
  const B = uuid();
  const b1 = await client(B, [p]);
  assert.deepEqual(sorted((await got(b1.page, "subscribed"))[0].online), sorted([a.user, B]));
  assert.deepEqual(await users(b1.page, "presence", p), sorted([a.user, B]));
  await waitUsers(a.page, "presence", p, [a.user, B]);

  // B's second tab: no second `online` (told before that tab's `subscribed` reply, if at all).
  const b2 = await client(B, [p]);
  assert.deepEqual(sorted((await got(b2.page, "subscribed"))[0].online), sorted([a.user, B]));
  // B's first tab closes: B is still online in its second one.
  await b1.page.close();
  await untilStatus(p, (s) => s.project_clients == 2);
  // A sync point after the server has handled that close: an event A receives.
  assert.equal((await broadcast(env.server, { project_id: p, type: "message_created", data: { n: 1 } })).delivered, 2);
  await a.page.waitForFunction((p) => window.log.events[p].some((e) => e.type == "message_created"), p, WAIT);
  assert.deepEqual(await users(a.page, "presence", p), sorted([a.user, B]), "B is online while a tab of B is");

  // The last tab of B goes (rt.close()): A sees B leave.
  await b2.page.evaluate(() => window.rt.close());
  await waitUsers(a.page, "presence", p, [a.user]);
  const frames = (await got(a.page, "presence")).filter((f) => f.user_id == B);
  assert.deepEqual(frames[0], { type: "presence", project_id: p, user_id: B, state: "online" });
  assert.equal(frames.filter((f) => f.state == "online").length, 1, JSON.stringify(frames));
  assert.equal(frames.at(-1).state, "offline");
  assert.deepEqual(await a.page.evaluate(() => window.changes), [sorted([a.user, B]), [a.user]]);
  // Nobody announces A to A.
  assert.ok((await got(a.page, "presence")).every((f) => f.user_id != a.user));

  assert.deepEqual([...a.errors, ...b1.errors, ...b2.errors], []);
  await Promise.all([a.page.close(), b2.page.close()]);
});

test("typing: notify() reaches the project's other connections and the typer's other tabs, not its own", async () => {
  const p = uuid();
  const A = uuid();
  // No recheck (recheckMs: 0): its second `subscribed`, 1.5 s after the first, is not what this
  // test is about, and a1's frames are checked below to be its `subscribed` reply and nothing else.
  const NO_RECHECK = { recheckMs: 0 };
  const a1 = await client(A, [p], NO_RECHECK);
  const a2 = await client(A, [p], NO_RECHECK);
  const b = await client(uuid(), [p], NO_RECHECK);
  assert.deepEqual(await users(b.page, "typing", p), []);

  await a1.page.evaluate((p) => window.rt.typing(p).notify(), p);
  await waitUsers(b.page, "typing", p, [A]);
  await waitUsers(a2.page, "typing", p, [A]);
  assert.deepEqual(await got(b.page, "typing"), [{ type: "typing", project_id: p, user_id: A }]);

  // The sender's own connection got no `typing` and no answer at all to its `typing`.
  const sent = await a1.page.evaluate(() => window.wire.sockets.flatMap((s) => s.sent.filter((f) => f.action == "typing")));
  assert.deepEqual(sent, [{ action: "typing", project_id: p }]);
  const a1got = await a1.page.evaluate(() => window.wire.sockets.flatMap((s) => s.got.map((f) => f.type)));
  assert.deepEqual(a1got.filter((t) => t != "presence"), ["subscribed"], JSON.stringify(a1got));
  assert.deepEqual(await users(a1.page, "typing", p), []);

  assert.deepEqual([...a1.errors, ...a2.errors, ...b.errors], []);
  await Promise.all([a1.page, a2.page, b.page].map((pg) => pg.close()));
});

test("direct messages: to the recipient's connections only, once each in onDirect, recovered after time away", async () => {
  const p = uuid();
  /** A page of a new user with onDirect registered, then subscribed to p (DMs ride project sockets). */
  async function recipient() {
    const user = uuid();
    const { page, errors } = await openPage(env.browser, env.site.origin, { getToken: () => mintToken(user) });
    await startClient(page, { url: env.server.url }, []);
    await page.evaluate((p) => {
      window.dms = [];
      window.dmResets = 0;
      window.rt.onDirect((m) => window.dms.push(m));
      window.rt.onDirectReset(() => window.dmResets++);
      window.join = () => (window.sub = window.rt.subscribe(p, () => {}));
      window.join();
    }, p);
    await waitSubscribed(page, [p]);
    // The stream's head, asked once the project is subscribed.
    await page.waitForFunction(() => window.wire.sockets.some((s) => s.got.some((f) => f.type == "subscribed_user")), null, WAIT);
    const [head] = await got(page, "subscribed_user");
    assert.equal(head.user_id, user);
    assert.equal(typeof head.epoch, "string");
    assert.ok(!head.reset);
    return { page, errors, user };
  }
  const dm = (to, text) => broadcast(env.server, { user_id: to, type: "direct_message", data: { text } });
  const dms = (page) => page.evaluate(() => window.dms.map((m) => [m.seq, m.data.text]));
  const a = await recipient();
  const b = await recipient();

  const r = await dm(a.user, "hi A");
  assert.deepEqual([r.recipients, r.delivered], [1, 1], JSON.stringify(r));
  await a.page.waitForFunction(() => window.dms.length == 1, null, WAIT);
  const [m] = await a.page.evaluate(() => window.dms);
  assert.equal(m.type, "direct_message");
  assert.equal(m.user_id, a.user);
  assert.equal(m.seq, 1);
  assert.deepEqual(m.data, { text: "hi A" });
  assert.equal(typeof m.event_id, "string");
  assert.equal(m.project_id, undefined);

  // B gets its own message, and nothing of A's (A's was on B's wire before B's, if at all).
  await dm(b.user, "hi B");
  await b.page.waitForFunction(() => window.dms.length == 1, null, WAIT);
  assert.deepEqual(await dms(b.page), [[1, "hi B"]]);
  assert.deepEqual((await got(b.page, "direct_message")).map((f) => f.user_id), [b.user]);
  assert.deepEqual(await dms(a.page), [[1, "hi A"]]);

  // A leaves the project (its only socket closes); two messages come meanwhile; back in the
  // project, `subscribe_user` with since 1 recovers them, in order, once each.
  await a.page.evaluate(() => window.sub.unsubscribe());
  await untilStatus(p, (s) => !s.user_ids.includes(a.user));
  assert.equal((await dm(a.user, "while away 1")).delivered, 0);
  assert.equal((await dm(a.user, "while away 2")).delivered, 0);
  await a.page.evaluate(() => window.join());
  await a.page.waitForFunction(() => window.dms.length >= 3, null, WAIT);
  assert.deepEqual(await dms(a.page), [
    [1, "hi A"],
    [2, "while away 1"],
    [3, "while away 2"],
  ]);
  const last = await a.page.evaluate(() => window.wire.sockets.at(-1));
  const ask = last.sent.find((f) => f.action == "subscribe_user");
  assert.equal(ask.since, 1);
  assert.equal(typeof ask.epoch, "string");
  const reply = last.got.find((f) => f.type == "subscribed_user");
  assert.deepEqual(reply.recovered.map((f) => f.seq), [2, 3]);
  assert.equal(reply.seq, 3);
  assert.equal(await a.page.evaluate(() => window.dmResets), 0);

  assert.deepEqual([...a.errors, ...b.errors], []);
  await Promise.all([a.page.close(), b.page.close()]);
});

test("the console: online list, typing into #chat, direct messages sent and logged, a closed page leaves", async () => {
  const p = uuid();
  async function consolePage() {
    const user = uuid();
    const page = await env.browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() == "error" && errors.push(m.text()));
    await page.goto(`${env.server.http}/`);
    await page.fill("#user", user);
    await page.fill("#project", p);
    await page.click("#connect");
    await page.waitForFunction(() => document.querySelector("#status").textContent == "open", null, WAIT);
    return { page, errors, user };
  }
  const online = (page) => page.locator("#online li").evaluateAll((li) => li.map((l) => l.dataset.user));
  const a = await consolePage();
  await a.page.locator(`#online li[data-user="${a.user}"]`).waitFor();
  const b = await consolePage();

  // Each sees both.
  await a.page.locator(`#online li[data-user="${b.user}"]`).waitFor();
  assert.deepEqual(await online(a.page), sorted([a.user, b.user]));
  await b.page.locator(`#online li[data-user="${a.user}"]`).waitFor();
  assert.deepEqual(await online(b.page), sorted([a.user, b.user]));
  assert.equal(await a.page.textContent(`#online li[data-user="${a.user}"]`), `${a.user} (you)`);

  // B types: A's typing list shows B.
  assert.equal(await a.page.locator("#typing li").count(), 0);
  await b.page.fill("#chat", "hel");
  await a.page.locator(`#typing li[data-user="${b.user}"]`).waitFor();
  assert.equal(await b.page.locator("#typing li").count(), 0, "no echo to the typer");

  // B sends A a direct message (clicking A in the online list picks the recipient).
  await b.page.click(`#online li[data-user="${a.user}"]`);
  assert.equal(await b.page.inputValue("#dm-user"), a.user);
  await b.page.fill("#dm-text", "psst");
  await b.page.click("#dm-send");
  await b.page.waitForFunction(() => document.querySelector("#dm-result").textContent.includes("delivered"), null, WAIT);
  assert.equal(await b.page.textContent("#dm-result"), "recipients 1 · delivered 1");
  const row = a.page.locator('#log tr.event[data-type="direct_message"][data-seq="1"]');
  await row.waitFor();
  assert.deepEqual(await row.locator("td").allTextContents().then((t) => t.slice(1)), [
    "direct_message",
    "1",
    JSON.stringify({ text: "psst" }),
  ]);
  assert.equal(await a.page.locator('#log tr[data-type="direct_message"]').count(), 1, "logged once");
  assert.equal(await b.page.locator('#log tr[data-type="direct_message"]').count(), 0);

  // B's page closes: A's list loses B.
  await b.page.close();
  await a.page.waitForFunction((u) => !document.querySelector(`#online li[data-user="${u}"]`), b.user, WAIT);
  assert.deepEqual(await online(a.page), [a.user]);
  await a.page.locator("#log tr.note", { hasText: `presence: user ${b.user} offline` }).waitFor();

  assert.deepEqual([...a.errors, ...b.errors], []);
  await a.page.close();
});
