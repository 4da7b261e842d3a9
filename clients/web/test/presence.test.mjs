import { test } from "node:test";
import assert from "node:assert/strict";
import { harness, flush, P, Q, U1, U2, U3, U4 } from "./helpers.mjs";

const sorted = (a) => [...a].sort();
const presence = (user_id, state, project_id = P) => ({ type: "presence", project_id, user_id, state });

test("presence: the set comes from the subscribed reply's online, then follows presence frames", async () => {
  const h = harness();
  const pr = h.rt.presence(P); // made before subscribing: sees what comes later
  const changes = [];
  pr.onChange((users) => changes.push(sorted(users)));
  assert.deepEqual(pr.users(), []);
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1", online: [U1, U2] });
  assert.deepEqual(sorted(pr.users()), [U1, U2]);
  ws.recv(presence(U3, "online"));
  ws.recv(presence(U3, "online")); // no change: not reported again
  ws.recv(presence(U1, "offline"));
  ws.recv(presence(U4, "offline")); // not known: no change
  assert.deepEqual(sorted(pr.users()), [U2, U3]);
  assert.deepEqual(changes, [[U1, U2], [U1, U2, U3], [U2, U3]]);
  assert.deepEqual(h.rt.presence(P.toUpperCase()).users().sort(), [U2, U3], "ids compared in lower case");
  assert.deepEqual(h.rt.presence(Q).users(), [], "another project is another set");
  // presence frames still reach the handlers, as before
  assert.deepEqual(
    h.events.map(([, e]) => e.type),
    ["presence", "presence", "presence", "presence"],
  );
  h.rt.close();
});

test("presence: three frames for three users make three members, each change reported", async () => {
  const h = harness();
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1", online: [] });
  const pr = h.rt.presence(P);
  const changes = [];
  const off = pr.onChange((users) => changes.push(sorted(users)));
  ws.recv(presence(U1, "online"));
  ws.recv(presence(U2, "online"));
  ws.recv(presence(U3, "online"));
  assert.deepEqual(sorted(pr.users()), [U1, U2, U3]);
  assert.deepEqual(changes, [[U1], [U1, U2], [U1, U2, U3]]);
  off();
  ws.recv(presence(U3, "offline"));
  assert.equal(changes.length, 3, "off() stops the reports");
  assert.deepEqual(sorted(pr.users()), [U1, U2]);
  h.rt.close();
});

test("presence: rebuilt from online at every (re)subscribe; a reply without online keeps the set", async () => {
  const h = harness();
  const pr = h.rt.presence(P);
  const { ws } = await h.connect(P, { seq: 3, epoch: "e1", online: [U1, U2] });
  ws.recv(presence(U3, "online"));
  assert.deepEqual(sorted(pr.users()), [U1, U2, U3]);
  ws.drop();
  await h.clock.advance(250);
  const ws2 = h.last();
  ws2.open();
  ws2.recv({ type: "subscribed", message: "subscribed", project_id: P, seq: 3, epoch: "e1", online: [U2, U4] });
  assert.deepEqual(sorted(pr.users()), [U2, U4], "U1 and U3 left while we were away");
  // an older server omits online: unknown, not empty
  ws2.drop();
  await h.clock.advance(500);
  h.last().open();
  h.last().recv({ type: "subscribed", message: "subscribed", project_id: P, seq: 3, epoch: "e1" });
  assert.deepEqual(sorted(pr.users()), [U2, U4]);
  h.rt.close();
});

test("presence: forgotten when the project's subscription ends", async () => {
  const h = harness();
  const pr = h.rt.presence(P);
  const changes = [];
  pr.onChange((users) => changes.push(users));
  const { sub } = await h.connect(P, { seq: 0, epoch: "e1", online: [U1] });
  sub.unsubscribe();
  await flush();
  assert.deepEqual(pr.users(), []);
  assert.deepEqual(changes, [[U1], []]);
  h.rt.close();
});
