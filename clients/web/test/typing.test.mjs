import { test } from "node:test";
import assert from "node:assert/strict";
import { harness, flush, P, Q, U1, U2 } from "./helpers.mjs";

const typings = (ws) => ws.sent.filter((f) => f.action === "typing");
const typing = (user_id, project_id = P) => ({ type: "typing", project_id, user_id });

test("typing: 50 notify() calls within 1 s send one message; one more once 2 s have passed", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  const t = h.rt.typing(P);
  for (let i = 0; i < 50; i++) {
    t.notify();
    await h.clock.advance(20);
  }
  assert.deepEqual(typings(ws), [{ action: "typing", project_id: P }]);
  await h.clock.advance(999); // 1999 ms after the first
  t.notify();
  assert.equal(typings(ws).length, 1, "still within 2 s");
  await h.clock.advance(1);
  t.notify();
  t.notify();
  assert.equal(typings(ws).length, 2);
  assert.equal(h.rt.typing(P.toUpperCase()).notify(), undefined);
  assert.equal(typings(ws).length, 2, "one budget per project, whichever handle");
  h.rt.close();
});

test("typing: a user shows for 3 s after their last typing frame", async () => {
  const h = harness();
  const t = h.rt.typing(P);
  const changes = [];
  t.onChange((users) => changes.push([...users].sort()));
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  ws.recv(typing(U1));
  assert.deepEqual(t.users(), [U1]);
  await h.clock.advance(2000);
  ws.recv(typing(U1)); // extends U1 to 5000
  await h.clock.advance(500);
  ws.recv(typing(U2)); // until 5500
  await h.clock.advance(2499); // 4999
  assert.deepEqual(t.users().sort(), [U1, U2]);
  await h.clock.advance(1); // 5000
  assert.deepEqual(t.users(), [U2]);
  await h.clock.advance(499);
  assert.deepEqual(t.users(), [U2]);
  await h.clock.advance(1); // 5500
  assert.deepEqual(t.users(), []);
  assert.deepEqual(changes, [[U1], [U1, U2], [U2], []], "a repeated frame is no change");
  assert.deepEqual(
    h.events.map(([, e]) => e.type),
    ["typing", "typing", "typing"],
    "typing frames still reach the handlers",
  );
  h.rt.close();
});

test("typing: nothing is sent unless the socket is open and subscribed to that project", async () => {
  const h = harness();
  const tp = h.rt.typing(P);
  const tq = h.rt.typing(Q);
  tp.notify(); // no socket at all
  h.rt.subscribe(P, () => {});
  await flush();
  const ws = h.last();
  ws.open();
  tp.notify(); // open, but no subscribed reply yet
  tq.notify(); // not subscribed to Q
  assert.deepEqual(typings(ws), []);
  ws.recv({ type: "subscribed", message: "subscribed", project_id: P, seq: 0, epoch: "e1" });
  tq.notify();
  assert.deepEqual(typings(ws), [], "Q is not this socket's project");
  tp.notify();
  assert.deepEqual(typings(ws), [{ action: "typing", project_id: P }], "the dropped calls used no budget");
  ws.drop();
  await h.clock.advance(2000);
  tp.notify(); // reconnecting: the new socket is not open yet
  assert.equal(h.sockets.length, 2);
  assert.deepEqual(typings(h.last()), []);
  assert.equal(typings(ws).length, 1);
  h.rt.close();
});
