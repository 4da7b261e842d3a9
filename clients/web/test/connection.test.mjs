import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { harness, flush, ev, jwt, P, Q } from "./helpers.mjs";
import { tokenExp } from "../dist/index.js";

test("make-before-break on a server reconnect hint: old socket closed only after the new one is subscribed", async () => {
  const h = harness();
  const { ws: old } = await h.connect(P, { seq: 10, epoch: "e1" });
  old.recv(ev(11));
  old.recv({ type: "reconnect", reason: "max_duration" });
  await flush();
  assert.equal(h.sockets.length, 2, "a new socket at once");
  const nu = h.last();
  assert.equal(old.closedByClient, false);
  nu.open();
  assert.deepEqual(nu.subscribes(), [{ action: "subscribe", project_id: P, since: 11, epoch: "e1" }]);
  // events keep coming on the old socket meanwhile
  old.recv(ev(12));
  assert.equal(old.closedByClient, false, "not before the subscribed reply");
  assert.deepEqual(h.statuses, ["connecting", "open"], "the switch is invisible in the status");
  nu.recv({ type: "subscribed", project_id: P, seq: 12, epoch: "e1", recovered: [ev(12)] });
  assert.equal(old.closedByClient, true, "closed once the new one is subscribed");
  // the overlap: a frame fanned out to both sockets
  nu.recv(ev(13));
  old.recv(ev(13)); // ignored: the old connection is detached
  await flush();
  nu.recv(ev(14));
  assert.deepEqual(h.seqs(), [11, 12, 13, 14], "nothing lost, nothing twice");
  assert.deepEqual(h.resets, []);
  assert.deepEqual(h.statuses, ["connecting", "open"]);
  // the old socket's close event does not trigger a reconnect
  await h.clock.advance(60_000);
  assert.equal(h.sockets.length, 2);
  h.rt.close();
});

test("make-before-break before maxConnectionMs (default: 5 min before 2 h)", async () => {
  const h = harness();
  const { ws: old } = await h.connect(P, { seq: 0, epoch: "e1" });
  await h.clock.advance(2 * 3600_000 - 300_000 - 1);
  assert.equal(h.sockets.length, 1);
  await h.clock.advance(1);
  assert.equal(h.sockets.length, 2);
  const nu = h.last();
  nu.open();
  assert.equal(old.closedByClient, false);
  nu.recv({ type: "subscribed", project_id: P, seq: 0, epoch: "e1" });
  assert.equal(old.closedByClient, true);
  h.rt.close();
});

test("make-before-break with today's server (no seq): overlap deduped by event_id, no reset", async () => {
  const h = harness();
  const { ws: old } = await h.connect(P, { project_id: P });
  old.recv({ type: "reconnect", reason: "max_duration" });
  await flush();
  const nu = h.last();
  nu.open();
  const m = (id) => ({ type: "message_created", project_id: P, event_id: id });
  old.recv(m("a"));
  nu.recv({ type: "subscribed", project_id: P });
  nu.recv(m("a"));
  nu.recv(m("b"));
  assert.deepEqual(h.seqs(), ["a", "b"]);
  assert.deepEqual(h.resets, []);
  assert.equal(old.closedByClient, true);
  h.rt.close();
});

test("a replacement that fails leaves the old connection in place and is retried with backoff", async () => {
  const h = harness();
  const { ws: old } = await h.connect(P, { seq: 0, epoch: "e1" });
  old.recv({ type: "reconnect", reason: "max_duration" });
  await flush();
  h.last().drop();
  assert.equal(old.closedByClient, false);
  assert.equal(h.rt.status, "open");
  old.recv(ev(1));
  assert.deepEqual(h.seqs(), [1]);
  await h.clock.advance(250);
  assert.equal(h.sockets.length, 3, "replacement retried");
  h.last().open();
  h.last().recv({ type: "subscribed", project_id: P, seq: 1, epoch: "e1" });
  assert.equal(old.closedByClient, true);
  h.rt.close();
});

test("if the old connection dies during the switch, the replacement takes over", async () => {
  const h = harness();
  const { ws: old } = await h.connect(P, { project_id: P });
  old.recv({ type: "reconnect", reason: "max_duration" });
  await flush();
  const nu = h.last();
  old.drop();
  assert.equal(h.rt.status, "connecting");
  nu.open();
  assert.equal(h.rt.status, "open");
  nu.recv({ type: "subscribed", project_id: P });
  assert.deepEqual(h.resets, [P], "no overlap, no seq: events may be lost");
  assert.equal(h.sockets.length, 2);
  h.rt.close();
});

test("refresh is sent ahead of exp with a fresh token, then again for the new token", async () => {
  const h = harness();
  const t0 = h.clock.now() / 1000;
  h.tokenFor = (i) => jwt({ sub: "u1", exp: Math.floor(t0) + 3600 * i });
  const { ws } = await h.connect();
  const refreshes = () => ws.sent.filter((f) => f.action === "refresh");
  await h.clock.advance(3540_000 - 1);
  assert.equal(refreshes().length, 0);
  assert.equal(h.tokenCalls, 1);
  await h.clock.advance(1);
  assert.equal(h.tokenCalls, 2);
  assert.deepEqual(refreshes(), [{ action: "refresh", token: h.tokenFor(2) }]);
  ws.recv({ type: "refreshed", expires_at: Math.floor(t0) + 7200 });
  assert.deepEqual(h.events, [], "replies are not events");
  // the second token expires 2 h after start: refreshed 60 s before that
  await h.clock.advance(3600_000 - 1);
  assert.equal(refreshes().length, 1);
  await h.clock.advance(1);
  assert.equal(refreshes().length, 2);
  h.rt.close();
});

test("a short-lived token is refreshed at 90% of what is left (10% lead)", async () => {
  const h = harness();
  const t0 = Math.floor(h.clock.now() / 1000);
  h.tokenFor = () => jwt({ exp: t0 + 300 });
  const { ws } = await h.connect();
  await h.clock.advance(270_000 - 1);
  assert.equal(ws.sent.filter((f) => f.action === "refresh").length, 0);
  await h.clock.advance(1);
  assert.equal(ws.sent.filter((f) => f.action === "refresh").length, 1);
  h.rt.close();
});

test("token_expired: reconnect at once with a fresh token", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { seq: 2, epoch: "e1" });
  ws.recv({ type: "error", code: "token_expired", message: "token expired" });
  await flush();
  assert.equal(ws.closedByClient, true);
  assert.equal(h.sockets.length, 2);
  assert.deepEqual(h.last().protocols, ["devhive", "token-2"]);
  h.last().open();
  assert.deepEqual(h.last().subscribes()[0].since, 2);
  h.rt.close();
});

test("tokenExp decodes base64url payloads and tolerates junk", () => {
  assert.equal(tokenExp(jwt({ exp: 1234, name: "ü?>>~" })), 1234);
  assert.equal(tokenExp("not-a-jwt"), undefined);
  assert.equal(tokenExp(jwt({ sub: "x" })), undefined);
});

test("keepalive: a ping every pingIntervalMs (default 8 min); pong is not an event", async () => {
  const h = harness();
  const { ws } = await h.connect();
  const pings = () => ws.sent.filter((f) => f.action === "ping").length;
  await h.clock.advance(480_000 - 1);
  assert.equal(pings(), 0);
  await h.clock.advance(1);
  assert.equal(pings(), 1);
  ws.recv({ type: "pong" });
  await h.clock.advance(480_000 * 3);
  assert.equal(pings(), 4);
  assert.deepEqual(h.events, []);
  h.rt.close();
  const h2 = harness({ pingIntervalMs: 1000 });
  const { ws: ws2 } = await h2.connect();
  await h2.clock.advance(3000);
  assert.equal(ws2.sent.filter((f) => f.action === "ping").length, 3);
  h2.rt.close();
});

test("bad frames are ignored with one console.warn per client, never a throw", async (t) => {
  const warn = t.mock.method(console, "warn", () => {});
  const h = harness();
  const { ws } = await h.connect();
  ws.recv("not json");
  ws.recv("42");
  ws.recv(JSON.stringify({ message: "Internal server error", connectionId: "abc" }));
  ws.recv("null");
  ws.recv(ev(1));
  assert.equal(warn.mock.callCount(), 1);
  assert.deepEqual(h.seqs(), [1], "still working");
  const h2 = harness();
  const { ws: ws2 } = await h2.connect();
  ws2.recv("{");
  assert.equal(warn.mock.callCount(), 2, "once per client instance");
  h.rt.close();
  h2.rt.close();
});

test("a throwing handler does not break the client or the other handlers", async (t) => {
  const error = t.mock.method(console, "error", () => {});
  const h = harness();
  const got = [];
  h.rt.onEvent(() => {
    throw new Error("app bug");
  });
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" }, () => {
    throw new Error("app bug 2");
  });
  h.rt.subscribe(P, (e) => got.push(e.seq));
  ws.recv(ev(1));
  ws.recv(ev(2));
  assert.deepEqual(got, [1, 2]);
  assert.deepEqual(h.seqs(), [1, 2]);
  assert.equal(error.mock.callCount(), 4);
  h.rt.close();
});

test("membership_revoked: subscription dropped, reported, not reconnected", async () => {
  const h = harness();
  const got = [];
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" }, (e) => got.push(e));
  ws.recv({ type: "unsubscribed", project_id: P, reason: "membership_revoked" });
  assert.deepEqual(h.revoked, [[P, "membership_revoked"]]);
  assert.equal(ws.closedByClient, true);
  assert.equal(h.rt.status, "closed");
  await h.clock.advance(600_000);
  assert.equal(h.sockets.length, 1, "no reconnect");
  // subscribing again is a new subscription
  h.rt.subscribe(P, () => {});
  await flush();
  assert.equal(h.sockets.length, 2);
  h.rt.close();
});

test("forbidden on subscribe revokes; unavailable on subscribe is a failed attempt", async () => {
  const h = harness();
  h.rt.subscribe(P, () => {});
  await flush();
  h.last().open();
  h.last().recv({ type: "error", code: "unavailable", message: "db down" });
  assert.equal(h.last().closedByClient, true);
  assert.deepEqual(h.revoked, []);
  await h.clock.advance(250);
  assert.equal(h.sockets.length, 2);
  h.last().open();
  h.last().recv({ type: "error", code: "forbidden", message: "not a member" });
  assert.deepEqual(h.revoked, [[P, "forbidden"]]);
  await h.clock.advance(600_000);
  assert.equal(h.sockets.length, 2);
  h.rt.close();
});

test("status: connecting → open → closed → connecting → open; closed after close()", async () => {
  const h = harness();
  const { ws } = await h.connect();
  assert.deepEqual(h.statuses, ["connecting", "open"]);
  ws.drop();
  assert.deepEqual(h.statuses, ["connecting", "open", "closed"]);
  await h.clock.advance(250);
  h.last().open();
  assert.deepEqual(h.statuses, ["connecting", "open", "closed", "connecting", "open"]);
  h.rt.close();
  assert.equal(h.rt.status, "closed");
  assert.equal(h.statuses.at(-1), "closed");
  await h.clock.advance(600_000);
  assert.equal(h.sockets.length, 2, "nothing after close()");
});

test("offline stops reconnecting until online; online reconnects at once", async () => {
  const h = harness({ random: () => 1 });
  const { ws } = await h.connect();
  h.win.dispatchEvent(new Event("offline"));
  ws.drop();
  await h.clock.advance(600_000);
  assert.equal(h.sockets.length, 1, "no attempts while offline");
  assert.equal(h.rt.status, "closed");
  h.win.dispatchEvent(new Event("online"));
  await flush();
  assert.equal(h.sockets.length, 2, "at once, no backoff");
  h.rt.close();
});

test("offline cancels a pending retry", async () => {
  const h = harness();
  const { ws } = await h.connect();
  ws.drop();
  assert.deepEqual(h.clock.delays(), [250]);
  h.win.dispatchEvent(new Event("offline"));
  assert.deepEqual(h.clock.delays(), []);
  h.rt.close();
});

test("page becoming visible with the socket closed reconnects at once and resets backoff", async () => {
  const h = harness({ random: () => 1 });
  h.rt.subscribe(P, () => {});
  for (let i = 0; i < 5; i++) {
    await flush();
    h.last().drop();
    await h.clock.advance(h.clock.delays()[0]);
  }
  await flush();
  h.last().drop();
  assert.deepEqual(h.clock.delays(), [16000]);
  h.doc.visibilityState = "hidden";
  h.doc.dispatchEvent(new Event("visibilitychange"));
  assert.equal(h.sockets.length, 6);
  h.doc.visibilityState = "visible";
  h.doc.dispatchEvent(new Event("visibilitychange"));
  await flush();
  assert.equal(h.sockets.length, 7, "at once");
  assert.deepEqual(h.clock.delays(), []);
  h.last().drop();
  assert.deepEqual(h.clock.delays(), [500], "backoff reset");
  // visible while open: nothing happens
  await h.clock.advance(500);
  h.last().open();
  h.doc.dispatchEvent(new Event("visibilitychange"));
  await flush();
  assert.equal(h.sockets.length, 8);
  h.rt.close();
});

test("two projects: one socket each, each with its own sequence state", async () => {
  const h = harness();
  const a = [];
  const b = [];
  const { ws: wa } = await h.connect(P, { seq: 5, epoch: "e1" }, (e) => a.push(e.seq));
  const { ws: wb } = await h.connect(Q, { seq: 100, epoch: "e9" }, (e) => b.push(e.seq));
  assert.notEqual(wa, wb);
  assert.deepEqual(wa.subscribes(), [{ action: "subscribe", project_id: P }]);
  assert.deepEqual(wb.subscribes(), [{ action: "subscribe", project_id: Q }]);
  wa.recv(ev(6));
  wb.recv(ev(101, { project_id: Q, event_id: "q101" }));
  assert.deepEqual(a, [6]);
  assert.deepEqual(b, [101]);
  assert.deepEqual(
    h.events.map(([p, e]) => [p, e.seq]),
    [
      [P, 6],
      [Q, 101],
    ],
  );
  // one of them down: aggregate status is closed until both are open again
  wb.drop();
  assert.equal(h.rt.status, "closed");
  await h.clock.advance(250);
  h.last().open();
  assert.equal(h.rt.status, "open");
  assert.deepEqual(h.last().subscribes(), [{ action: "subscribe", project_id: Q, since: 101, epoch: "e9" }]);
  h.rt.close();
});

test("handlers of one project share a socket; the last unsubscribe closes it", async () => {
  const h = harness();
  const one = [];
  const two = [];
  const { ws, sub } = await h.connect(P, { seq: 0, epoch: "e1" }, (e) => one.push(e.seq));
  const sub2 = h.rt.subscribe(P.toUpperCase(), (e) => two.push(e.seq));
  await flush();
  assert.equal(h.sockets.length, 1, "ids compared in lower case");
  ws.recv(ev(1));
  sub.unsubscribe();
  ws.recv(ev(2));
  assert.deepEqual(one, [1]);
  assert.deepEqual(two, [1, 2]);
  assert.equal(ws.closedByClient, false);
  sub2.unsubscribe();
  sub2.unsubscribe();
  assert.equal(ws.closedByClient, true);
  assert.equal(h.rt.status, "closed");
  await h.clock.advance(600_000);
  assert.equal(h.sockets.length, 1);
  h.rt.close();
});

test("unsubscribing while getToken is pending makes no socket", async () => {
  let release;
  const h = harness({ getToken: () => new Promise((r) => (release = r)) });
  const sub = h.rt.subscribe(P, () => {});
  sub.unsubscribe();
  release("late-token");
  await flush();
  assert.equal(h.sockets.length, 0);
  h.rt.close();
});
