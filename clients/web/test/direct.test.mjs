import { test } from "node:test";
import assert from "node:assert/strict";
import { harness, flush, ev, P, Q, U1 } from "./helpers.mjs";

const dm = (seq, extra = {}) => ({
  type: "direct_message",
  user_id: U1,
  seq,
  epoch: "u1",
  data: { text: `m${seq}` },
  event_id: `dm-${seq}`,
  timestamp: "2026-01-01T00:00:00Z",
  ...extra,
});
const userSubs = (ws) => ws.sent.filter((f) => f.action === "subscribe_user");
const subscribedUser = (seq, extra = {}) => ({ type: "subscribed_user", user_id: U1, seq, epoch: "u1", ...extra });

/** A client with one onDirect handler; returns the harness and the seqs the handler got. */
function direct(options) {
  const h = harness(options);
  const got = [];
  h.directResets = 0;
  h.offDirect = h.rt.onDirect((m) => got.push(m.seq));
  h.rt.onDirectReset(() => h.directResets++);
  return { h, got };
}

test("direct messages: subscribe_user after the project's reply; each message once, in seq order, across sockets", async () => {
  const { h, got } = direct();
  const { ws: wa } = await h.connect(P, { seq: 0, epoch: "e1" });
  assert.deepEqual(userSubs(wa), [{ action: "subscribe_user" }], "learns the head");
  assert.deepEqual(wa.sent.map((f) => f.action), ["subscribe", "subscribe_user"], "only once subscribed");
  wa.recv(subscribedUser(10));
  const { ws: wb } = await h.connect(Q, { seq: 0, epoch: "e1" });
  assert.deepEqual(userSubs(wb), [], "one connection carries the user stream");
  // the server sends a direct message to every connection of the user
  for (const s of [11, 13, 12]) {
    wa.recv(dm(s));
    wb.recv(dm(s));
  }
  assert.deepEqual(got, [11, 12, 13], "13 waited for 12");
  wa.recv(dm(11));
  wb.recv(dm(13));
  assert.deepEqual(got, [11, 12, 13], "nothing twice");
  // the project handlers still see every direct_message frame of their socket, as before
  assert.equal(h.events.filter(([, e]) => e.type == "direct_message").length, 6);
  assert.equal(h.directResets, 0);
  h.rt.close();
});

test("direct messages: after a reconnect, subscribe_user with since/epoch; recovered fills the gap in order", async () => {
  const { h, got } = direct();
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  ws.recv(subscribedUser(10));
  ws.recv(dm(11));
  ws.drop(); // 12 and 13 are sent while we are away
  await h.clock.advance(250);
  const ws2 = h.last();
  ws2.open();
  assert.deepEqual(userSubs(ws2), [], "not before the project's reply");
  ws2.recv({ type: "subscribed", project_id: P, seq: 0, epoch: "e1" });
  assert.deepEqual(userSubs(ws2), [{ action: "subscribe_user", since: 11, epoch: "u1" }]);
  ws2.recv(dm(14)); // live, ahead of the reply: held
  assert.deepEqual(got, [11]);
  ws2.recv(subscribedUser(14, { recovered: [dm(12), dm(13), dm(14)] }));
  ws2.recv(dm(15));
  assert.deepEqual(got, [11, 12, 13, 14, 15]);
  assert.equal(h.directResets, 0);
  h.rt.close();
});

test("direct messages: a gap on a live socket is asked for after gapWaitMs and delivered in order", async () => {
  const { h, got } = direct({ recheckMs: 0 }); // only the gap asks here (the recheck: recheck.test.mjs)
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  ws.recv(subscribedUser(10));
  ws.recv(dm(11));
  ws.recv(dm(14));
  assert.deepEqual(got, [11]);
  await h.clock.advance(999);
  assert.equal(userSubs(ws).length, 1);
  await h.clock.advance(1);
  assert.deepEqual(userSubs(ws)[1], { action: "subscribe_user", since: 11, epoch: "u1" });
  // the project stream saw no gap: its seq is untouched by the user stream's
  assert.equal(ws.subscribes().length, 1);
  ws.recv(subscribedUser(14, { recovered: [dm(12), dm(13), dm(14)] }));
  assert.deepEqual(got, [11, 12, 13, 14]);
  await h.clock.advance(5000);
  assert.equal(userSubs(ws).length, 2, "gap closed: no more asking");
  // a seq the server's reply does not have does not exist: what waited behind it goes on
  ws.recv(dm(16));
  await h.clock.advance(1000);
  ws.recv(subscribedUser(16, { recovered: [dm(16)] }));
  ws.recv(dm(17));
  assert.deepEqual(got, [11, 12, 13, 14, 16, 17]);
  h.rt.close();
});

test("direct messages: reset (or a new epoch) calls onDirectReset and restarts at the head", async () => {
  const { h, got } = direct();
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  ws.recv(subscribedUser(10));
  ws.drop();
  await h.clock.advance(250);
  h.last().open();
  h.last().recv({ type: "subscribed", project_id: P, seq: 0, epoch: "e1" });
  h.last().recv(subscribedUser(500, { reset: true }));
  assert.equal(h.directResets, 1);
  h.last().recv(dm(500));
  h.last().recv(dm(501));
  assert.deepEqual(got, [501], "500 is covered by the refetch");
  assert.deepEqual(h.resets, [], "the project stream was not reset");
  h.last().drop();
  await h.clock.advance(500);
  h.last().open();
  h.last().recv({ type: "subscribed", project_id: P, seq: 0, epoch: "e1" });
  assert.deepEqual(userSubs(h.last()), [{ action: "subscribe_user", since: 501, epoch: "u1" }]);
  h.last().recv(subscribedUser(3, { epoch: "u2" }));
  assert.equal(h.directResets, 2, "a new epoch is a reset");
  h.last().recv(dm(4, { epoch: "u2" }));
  assert.deepEqual(got, [501, 4]);
  h.rt.close();
});

test("direct messages: no subscribe_user without an onDirect handler", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  ws.recv(dm(1));
  ws.drop();
  await h.clock.advance(250);
  h.last().open();
  h.last().recv({ type: "subscribed", project_id: P, seq: 0, epoch: "e1" });
  assert.deepEqual(userSubs(ws), []);
  assert.deepEqual(userSubs(h.last()), []);
  assert.deepEqual(h.events.map(([, e]) => e.type), ["direct_message"], "onEvent still gets them");
  // the first handler asks at once on the open socket; a second handler asks nothing more
  const got = [];
  const off = h.rt.onDirect((m) => got.push(m.seq));
  const off2 = h.rt.onDirect(() => {});
  assert.deepEqual(userSubs(h.last()), [{ action: "subscribe_user" }]);
  h.last().recv(subscribedUser(7));
  h.last().recv(dm(8));
  assert.deepEqual(got, [8]);
  off();
  off2();
  h.last().recv(dm(9));
  assert.deepEqual(got, [8]);
  h.last().drop();
  await h.clock.advance(1000);
  h.last().open();
  h.last().recv({ type: "subscribed", project_id: P, seq: 0, epoch: "e1" });
  assert.deepEqual(userSubs(h.last()), [], "none once the handlers are gone");
  h.rt.close();
});

test("direct messages: an older server refusing subscribe_user still delivers them, once each, without reconnecting", async () => {
  const { h, got } = direct();
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  ws.recv({ type: "error", code: "bad_request", message: 'unknown action "subscribe_user"' });
  const legacy = (id) => ({ type: "direct_message", user_id: U1, data: {}, event_id: id });
  ws.recv(legacy("a"));
  ws.recv(legacy("a"));
  ws.recv(legacy("b"));
  ws.recv(ev(1));
  assert.deepEqual(got, [undefined, undefined]);
  assert.equal(ws.closedByClient, false);
  await h.clock.advance(60_000);
  assert.equal(h.sockets.length, 1);
  assert.deepEqual(h.seqs(), ["a", "b", 1]);
  h.rt.close();
});
