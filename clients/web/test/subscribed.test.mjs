import { test } from "node:test";
import assert from "node:assert/strict";
import { harness, flush, ev, P, Q } from "./helpers.mjs";

// onSubscribed: a subscription's first `subscribed` reply (a subscribe without `since`). Events up
// to its head happened before the subscription held, so data the app fetched earlier (at mount,
// racing rt.subscribe) may have missed one: the app refetches once. Replies to a subscribe with
// `since` (a resume, the recheck, a gap, a replacement) are covered by `recovered` and call nothing.

const subscribed = (seq, extra = {}) => ({ type: "subscribed", message: "subscribed", project_id: P, seq, epoch: "e1", ...extra });
const withSubs = (options) => {
  const h = harness(options);
  h.subs = [];
  h.offSub = h.rt.onSubscribed((p) => h.subs.push(p));
  return h;
};

test("onSubscribed: once on the first subscribed reply, with the project id; onReset not called", async () => {
  const h = withSubs();
  h.rt.subscribe(P, () => {});
  await flush();
  h.last().open();
  assert.deepEqual(h.subs, [], "not before the reply");
  h.last().recv(subscribed(5));
  assert.deepEqual(h.subs, [P]);
  assert.deepEqual(h.resets, []);
  h.last().recv(ev(6));
  h.last().recv(subscribed(6)); // a duplicated reply
  assert.deepEqual(h.subs, [P]);
  h.rt.close();
});

test("onSubscribed: not for the recheck's reply, nor for a reconnect's resume and its recheck", async () => {
  const h = withSubs();
  const { ws } = await h.connect(P, { seq: 5, epoch: "e1" });
  await h.clock.advance(1500);
  assert.equal(ws.subscribes()[1].since, 5, "the recheck");
  ws.recv(subscribed(5, { recovered: [] }));
  assert.deepEqual(h.subs, [P]);
  ws.drop();
  await h.clock.advance(250);
  const ws2 = h.last();
  ws2.open();
  assert.equal(ws2.subscribes()[0].since, 5, "a resume");
  ws2.recv(subscribed(6, { recovered: [ev(6)] }));
  await h.clock.advance(1500);
  ws2.recv(subscribed(6, { recovered: [] }));
  assert.deepEqual(h.seqs(), [6]);
  assert.deepEqual(h.subs, [P], "still once");
  assert.deepEqual(h.resets, []);
  h.rt.close();
});

test("onSubscribed: not for a gap re-subscribe; a resume that resets calls onReset only", async () => {
  const h = withSubs({ recheckMs: 0 });
  const { ws } = await h.connect(P, { seq: 5, epoch: "e1" });
  ws.recv(ev(7));
  await h.clock.advance(1000);
  assert.deepEqual(ws.subscribes()[1], { action: "subscribe", project_id: P, since: 5, epoch: "e1" });
  ws.recv(subscribed(7, { recovered: [ev(6), ev(7)] }));
  assert.deepEqual(h.seqs(), [7, 6]);
  assert.deepEqual(h.subs, [P]);
  ws.drop();
  await h.clock.advance(250);
  h.last().open();
  h.last().recv(subscribed(50, { epoch: "e2" })); // a new stream: events may have been lost
  assert.deepEqual(h.resets, [P]);
  assert.deepEqual(h.subs, [P]);
  h.rt.close();
});

test("onSubscribed: not for a make-before-break replacement", async () => {
  const h = withSubs();
  const { ws: old } = await h.connect(P, { seq: 10, epoch: "e1" });
  old.recv({ type: "reconnect", reason: "max_duration" });
  await flush();
  const nu = h.last();
  assert.notEqual(nu, old);
  nu.open();
  nu.recv(subscribed(10));
  assert.equal(old.closedByClient, true);
  assert.deepEqual(h.subs, [P]);
  await h.clock.advance(2 * 3600_000); // the timed replacement too
  h.last().open();
  h.last().recv(subscribed(10));
  assert.ok(h.sockets.length >= 3);
  assert.deepEqual(h.subs, [P]);
  h.rt.close();
});

test("onSubscribed: a first subscribe that failed before its reply fires on the retry's reply; a server without seq too", async () => {
  const h = withSubs();
  h.rt.subscribe(P, () => {});
  await flush();
  h.last().open();
  h.last().recv({ type: "error", code: "unavailable", message: "db down" });
  await h.clock.advance(250);
  h.last().open();
  assert.deepEqual(h.last().subscribes(), [{ action: "subscribe", project_id: P }], "still without since");
  assert.deepEqual(h.subs, []);
  h.last().recv({ type: "subscribed", message: "subscribed", project_id: P }); // no seq, no epoch
  assert.deepEqual(h.subs, [P]);
  assert.deepEqual(h.resets, []);
  h.rt.close();
});

test("onSubscribed: each project once; a new subscription (after unsubscribe or revocation) again; off stops it", async () => {
  const h = withSubs();
  const { sub } = await h.connect(P);
  await h.connect(Q, { seq: 3, epoch: "e9" });
  assert.deepEqual(h.subs, [P, Q]);
  sub.unsubscribe();
  await h.connect(P, { seq: 4, epoch: "e1" });
  assert.deepEqual(h.subs, [P, Q, P], "unsubscribed and subscribed again: a new subscription");
  h.last().recv({ type: "unsubscribed", project_id: P, reason: "membership_revoked" });
  await h.connect(P, { seq: 4, epoch: "e1" });
  assert.deepEqual(h.subs, [P, Q, P, P]);
  h.rt.subscribe(P.toUpperCase(), () => {}); // the same project: its socket is shared, no new reply
  await flush();
  assert.deepEqual(h.subs, [P, Q, P, P]);
  h.offSub();
  h.last().recv({ type: "unsubscribed", project_id: P, reason: "membership_revoked" });
  await h.connect(P, { seq: 4, epoch: "e1" });
  assert.deepEqual(h.subs, [P, Q, P, P], "off");
  h.rt.close();
});
