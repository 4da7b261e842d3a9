import { test } from "node:test";
import assert from "node:assert/strict";
import { harness, flush, ev, P } from "./helpers.mjs";

test("out-of-order within 1 s: both delivered at once, no re-subscribe", async () => {
  const h = harness({ recheckMs: 0 }); // gaps only (the recheck: recheck.test.mjs)
  const { ws } = await h.connect(P, { seq: 5, epoch: "e1" });
  assert.equal(ws.subscribes().length, 1);
  ws.recv(ev(7));
  assert.deepEqual(h.seqs(), [7], "delivered without waiting for 6");
  await h.clock.advance(500);
  ws.recv(ev(6));
  assert.deepEqual(h.seqs(), [7, 6]);
  await h.clock.advance(5000);
  assert.equal(ws.subscribes().length, 1, "gap closed in time: no subscribe with since");
  h.rt.close();
});

test("a gap not filled within gapWaitMs re-subscribes with since = contiguous seq; recovered fills it", async () => {
  const h = harness({ recheckMs: 0 });
  const { ws } = await h.connect(P, { seq: 5, epoch: "e1" });
  ws.recv(ev(6));
  ws.recv(ev(9));
  assert.deepEqual(h.seqs(), [6, 9]);
  await h.clock.advance(999);
  assert.equal(ws.subscribes().length, 1, "still waiting");
  await h.clock.advance(1);
  assert.deepEqual(ws.subscribes()[1], { action: "subscribe", project_id: P, since: 6, epoch: "e1" });
  ws.recv({ type: "subscribed", message: "subscribed", project_id: P, seq: 9, epoch: "e1", recovered: [ev(7), ev(8), ev(9)] });
  assert.deepEqual(h.seqs(), [6, 9, 7, 8], "7 and 8 delivered in order, 9 not twice");
  assert.deepEqual(h.resets, []);
  // now contiguous through 9: late copies are dropped, 10 is delivered, no further subscribe
  ws.recv(ev(8));
  ws.recv(ev(10));
  await h.clock.advance(3000);
  assert.deepEqual(h.seqs(), [6, 9, 7, 8, 10]);
  assert.equal(ws.subscribes().length, 2);
  h.rt.close();
});

test("a gap that recovery does not fill asks again after another gapWaitMs", async () => {
  const h = harness({ gapWaitMs: 200 });
  const { ws } = await h.connect(P, { seq: 1, epoch: "e1" });
  ws.recv(ev(3));
  await h.clock.advance(200);
  assert.equal(ws.subscribes().length, 2);
  ws.recv({ type: "error", code: "rate_limited", message: "slow down" });
  await h.clock.advance(200);
  assert.equal(ws.subscribes().length, 3);
  assert.equal(ws.subscribes()[2].since, 1);
  ws.recv({ type: "subscribed", project_id: P, seq: 3, epoch: "e1", recovered: [ev(2), ev(3)] });
  await h.clock.advance(1000);
  assert.equal(ws.subscribes().length, 3);
  assert.deepEqual(h.seqs(), [3, 2]);
  h.rt.close();
});

test("duplicates by event_id are dropped, with or without seq; frames without event_id always pass", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { project_id: P }); // today's server: no seq, no epoch
  const e = { type: "message_created", project_id: P, data: { id: "m1" }, event_id: "x1" };
  ws.recv(e);
  ws.recv(e);
  ws.recv({ ...e, event_id: "x2" });
  ws.recv({ type: "typing", project_id: P, user_id: "u1" });
  ws.recv({ type: "typing", project_id: P, user_id: "u1" });
  ws.recv({ type: "presence", project_id: P, user_id: "u2", state: "online" });
  assert.deepEqual(
    h.events.map(([, x]) => x.event_id ?? x.type),
    ["x1", "x2", "typing", "typing", "presence"],
  );
  h.rt.close();
});

test("a retried delivery under the same seq is dropped even after the dedupe window forgot its event_id", async () => {
  const h = harness({ dedupeSize: 3 });
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  for (let i = 1; i <= 6; i++) ws.recv(ev(i));
  ws.recv(ev(1));
  assert.deepEqual(h.seqs(), [1, 2, 3, 4, 5, 6]);
  h.rt.close();
});

test("the event_id window is bounded (dedupeSize): the oldest id is forgotten", async () => {
  const h = harness({ dedupeSize: 3 });
  const { ws } = await h.connect(P, {});
  const m = (id) => ({ type: "message_created", project_id: P, event_id: id });
  ["a", "b", "c", "a", "d", "a"].forEach((id) => ws.recv(m(id)));
  // a, b, c delivered; a dropped (remembered); d pushes a out; a is new again
  assert.deepEqual(h.seqs(), ["a", "b", "c", "d", "a"]);
  h.rt.close();
});

test("after a reconnect the client resumes with since/epoch and applies recovered in order", async () => {
  const h = harness();
  const seen = [];
  const { ws } = await h.connect(P, { seq: 3, epoch: "e1" }, (e) => seen.push(e.seq));
  ws.recv(ev(4));
  ws.drop();
  await h.clock.advance(250);
  const ws2 = h.last();
  assert.notEqual(ws2, ws);
  ws2.open();
  assert.deepEqual(ws2.subscribes(), [{ action: "subscribe", project_id: P, since: 4, epoch: "e1" }]);
  ws2.recv({ type: "subscribed", message: "subscribed", project_id: P, seq: 7, epoch: "e1", recovered: [ev(5), ev(6), ev(7)] });
  ws2.recv(ev(8));
  assert.deepEqual(seen, [4, 5, 6, 7, 8]);
  assert.deepEqual(h.resets, []);
  h.rt.close();
});

test("reset:true is reported through onReset and tracking restarts at the new head", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { seq: 3, epoch: "e1" });
  ws.drop();
  await h.clock.advance(250);
  const ws2 = h.last();
  ws2.open();
  ws2.recv({ type: "subscribed", project_id: P, seq: 500, epoch: "e1", reset: true });
  assert.deepEqual(h.resets, [P]);
  ws2.recv(ev(500));
  ws2.recv(ev(501));
  assert.deepEqual(h.seqs(), [501], "500 is covered by the refetch");
  h.rt.close();
});

test("a new epoch is a reset even without reset:true", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { seq: 3, epoch: "e1" });
  ws.drop();
  await h.clock.advance(250);
  h.last().open();
  h.last().recv({ type: "subscribed", project_id: P, seq: 2, epoch: "e2" });
  assert.deepEqual(h.resets, [P]);
  h.last().recv(ev(3));
  assert.deepEqual(h.seqs(), [3], "seq 3 of the new epoch is new");
  h.last().drop();
  await h.clock.advance(500); // second failure within a minute: bound 1 s, random() = 0.5
  assert.equal(h.sockets.length, 3);
  h.last().open();
  assert.deepEqual(h.last().subscribes()[0], { action: "subscribe", project_id: P, since: 3, epoch: "e2" });
  h.rt.close();
});

test("today's server (no seq): first subscribe is no reset, a reconnect is (events may have been lost)", async () => {
  const h = harness();
  const { ws } = await h.connect(P, {});
  assert.deepEqual(h.resets, []);
  assert.deepEqual(ws.subscribes(), [{ action: "subscribe", project_id: P }], "no since without a seq");
  ws.drop();
  await h.clock.advance(250);
  h.last().open();
  assert.deepEqual(h.last().subscribes(), [{ action: "subscribe", project_id: P }]);
  h.last().recv({ type: "subscribed", project_id: P });
  assert.deepEqual(h.resets, [P]);
  h.rt.close();
});

test("an event that arrives before the subscribed reply is not lost or repeated", async () => {
  const h = harness({ recheckMs: 0 });
  h.rt.subscribe(P, () => {});
  await flush();
  const ws = h.last();
  ws.open();
  ws.recv(ev(11)); // fanned out before the reply reached us
  ws.recv({ type: "subscribed", project_id: P, seq: 10, epoch: "e1" });
  ws.recv(ev(11));
  ws.recv(ev(12));
  await h.clock.advance(5000);
  assert.deepEqual(h.seqs(), [11, 12]);
  assert.equal(ws.subscribes().length, 1, "11 counted as seen: no gap");
  h.rt.close();
});

test("resync and direct_message pass through without disturbing the project's seq", async () => {
  const h = harness({ recheckMs: 0 });
  const { ws } = await h.connect(P, { seq: 1, epoch: "e1" });
  ws.recv({ type: "resync", project_id: "*" });
  ws.recv({ type: "direct_message", user_id: "u1", data: { text: "hi" }, event_id: "d1", seq: 40 });
  ws.recv(ev(2));
  await h.clock.advance(5000);
  assert.deepEqual(h.events.map(([, e]) => e.type), ["resync", "direct_message", "cache_invalidate"]);
  assert.equal(ws.subscribes().length, 1, "seq 40 of the user stream is no gap in the project stream");
  h.rt.close();
});
