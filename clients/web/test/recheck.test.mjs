import { test } from "node:test";
import assert from "node:assert/strict";
import { harness, flush, ev, P, U1 } from "./helpers.mjs";

// The subscriber index lags a subscription by up to ~1 s: an event committed right after the
// `subscribed` reply (seq S) is fanned out as S+1 without reaching the new connection. One
// position re-check per connection, recheckMs (1500) after its first `subscribed`, finds it.

const subscribed = (seq, extra = {}) => ({ type: "subscribed", message: "subscribed", project_id: P, seq, epoch: "e1", ...extra });

test("recheck: 1500 ms after subscribed the client asks since=S and gets the trailing S+1 it was never sent, once", async () => {
  const h = harness();
  const got = [];
  const { ws } = await h.connect(P, { seq: 5, epoch: "e1" }, (e) => got.push(e.seq));
  // the fake server never pushes 6 on this socket (the index did not list it yet)
  await h.clock.advance(1499);
  assert.equal(ws.subscribes().length, 1, "not before recheckMs");
  await h.clock.advance(1);
  assert.deepEqual(ws.subscribes()[1], { action: "subscribe", project_id: P, since: 5, epoch: "e1" }, "the gap path's subscribe");
  ws.recv(subscribed(6, { recovered: [ev(6)] }));
  assert.deepEqual(got, [6]);
  ws.recv(ev(6)); // a late live copy, had the index caught up after all
  ws.recv(subscribed(6, { recovered: [ev(6)] })); // a duplicated reply
  ws.recv(ev(7));
  assert.deepEqual(got, [6, 7], "6 delivered exactly once");
  assert.deepEqual(h.resets, []);
  h.rt.close();
});

test("recheck: its own subscribed reply (empty recovered) schedules no further recheck", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { seq: 5, epoch: "e1" });
  await h.clock.advance(1500);
  assert.equal(ws.subscribes().length, 2);
  ws.recv(subscribed(5, { recovered: [] }));
  await h.clock.advance(60_000);
  assert.equal(ws.subscribes().length, 2, "one recheck per real subscribe, not a loop");
  assert.deepEqual(h.events, []);
  assert.deepEqual(h.resets, []);
  // a reconnect's resume is a real subscribe again: one recheck on the new socket
  ws.drop();
  await h.clock.advance(250);
  const ws2 = h.last();
  ws2.open();
  ws2.recv(subscribed(5, { recovered: [] }));
  await h.clock.advance(1500);
  assert.deepEqual(ws2.subscribes(), [
    { action: "subscribe", project_id: P, since: 5, epoch: "e1" },
    { action: "subscribe", project_id: P, since: 5, epoch: "e1" },
  ]);
  ws2.recv(subscribed(5, { recovered: [] }));
  await h.clock.advance(60_000);
  assert.equal(ws2.subscribes().length, 2);
  h.rt.close();
});

test("recheck: cancelled when the socket closes first; the reconnect's subscribe gets its own", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { seq: 5, epoch: "e1" });
  await h.clock.advance(1000);
  ws.drop();
  assert.ok(!h.clock.delays().includes(1500), "no recheck timer left behind");
  await h.clock.advance(250);
  const ws2 = h.last();
  ws2.open();
  await h.clock.advance(5000); // no reply yet: nothing to recheck
  assert.equal(ws2.subscribes().length, 1);
  ws2.recv(subscribed(5));
  await h.clock.advance(1500);
  assert.equal(ws2.subscribes().length, 2);
  assert.equal(ws.subscribes().length, 1);
  h.rt.close();
  assert.deepEqual(h.clock.delays(), [], "close leaves no timer");
});

test("recheck: recheckMs sets the delay, 0 disables; a server without seq gets none (and no reset)", async () => {
  let h = harness({ recheckMs: 300 });
  let { ws } = await h.connect(P, { seq: 1, epoch: "e1" });
  await h.clock.advance(300);
  assert.equal(ws.subscribes().length, 2);
  h.rt.close();

  h = harness({ recheckMs: 0 });
  ({ ws } = await h.connect(P, { seq: 1, epoch: "e1" }));
  await h.clock.advance(60_000);
  assert.equal(ws.subscribes().length, 1);
  h.rt.close();

  h = harness();
  ({ ws } = await h.connect(P, {}));
  await h.clock.advance(60_000);
  assert.deepEqual(ws.subscribes(), [{ action: "subscribe", project_id: P }]);
  assert.deepEqual(h.resets, []);
  h.rt.close();
});

test("recheck: the user stream on that socket is asked again too (subscribe_user since), once", async () => {
  const h = harness();
  const got = [];
  h.rt.onDirect((m) => got.push(m.seq));
  const userSubs = (ws) => ws.sent.filter((f) => f.action === "subscribe_user");
  const { ws } = await h.connect(P, { seq: 5, epoch: "e1" });
  ws.recv({ type: "subscribed_user", user_id: U1, seq: 10, epoch: "u1" });
  await h.clock.advance(1500);
  assert.deepEqual(userSubs(ws), [{ action: "subscribe_user" }, { action: "subscribe_user", since: 10, epoch: "u1" }]);
  const dm = { type: "direct_message", user_id: U1, seq: 11, data: {}, event_id: "dm-11" };
  ws.recv({ type: "subscribed_user", user_id: U1, seq: 11, epoch: "u1", recovered: [dm] });
  ws.recv(subscribed(5, { recovered: [] }));
  ws.recv(dm); // late live copy
  await h.clock.advance(60_000);
  assert.deepEqual(got, [11]);
  assert.equal(userSubs(ws).length, 2);
  assert.equal(ws.subscribes().length, 2);
  h.rt.close();
});
