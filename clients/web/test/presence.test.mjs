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
  assert.deepEqual(sorted(pr.users()), [U1, U2, U3], "an offline user stays for the debounce");
  await h.clock.advance(3000);
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
  await h.clock.advance(3000);
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

test("presence debounce: a reload (offline, online again within 3 s) is not shown; a real leave is, 3 s later", async () => {
  const h = harness();
  const pr = h.rt.presence(P);
  const changes = [];
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1", online: [U1, U2] });
  pr.onChange((users) => changes.push(sorted(users)));
  // U2 reloads: the server says offline at once, then online when the new page subscribes
  ws.recv(presence(U2, "offline"));
  await h.clock.advance(2000);
  assert.deepEqual(sorted(pr.users()), [U1, U2], "still shown during the debounce");
  ws.recv(presence(U2, "online"));
  await h.clock.advance(10_000);
  assert.deepEqual(sorted(pr.users()), [U1, U2]);
  assert.deepEqual(changes, [], "the set never changed: no onChange");
  // U2 really leaves
  ws.recv(presence(U2, "offline"));
  await h.clock.advance(2999);
  assert.deepEqual(sorted(pr.users()), [U1, U2]);
  assert.deepEqual(changes, []);
  await h.clock.advance(1);
  assert.deepEqual(pr.users(), [U1]);
  assert.deepEqual(changes, [[U1]]);
  h.rt.close();
});

test("presence debounce: presenceDebounceMs sets it (0: at once)", async () => {
  let h = harness({ presenceDebounceMs: 500 });
  let { ws } = await h.connect(P, { seq: 0, epoch: "e1", online: [U1, U2] });
  ws.recv(presence(U2, "offline"));
  await h.clock.advance(499);
  assert.deepEqual(sorted(h.rt.presence(P).users()), [U1, U2]);
  await h.clock.advance(1);
  assert.deepEqual(h.rt.presence(P).users(), [U1]);
  h.rt.close();

  h = harness({ presenceDebounceMs: 0 });
  ({ ws } = await h.connect(P, { seq: 0, epoch: "e1", online: [U1, U2] }));
  ws.recv(presence(U2, "offline"));
  assert.deepEqual(h.rt.presence(P).users(), [U1]);
  h.rt.close();
});

test("presence debounce: a subscribed reply's online settles pending removals (listed: kept, absent: gone at once)", async () => {
  const h = harness();
  const pr = h.rt.presence(P);
  const changes = [];
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1", online: [U1, U2, U3] });
  pr.onChange((users) => changes.push(sorted(users)));
  ws.recv(presence(U2, "offline"));
  ws.recv(presence(U3, "offline"));
  ws.drop();
  await h.clock.advance(250);
  h.last().open();
  h.last().recv({ type: "subscribed", message: "subscribed", project_id: P, seq: 0, epoch: "e1", online: [U1, U2] });
  assert.deepEqual(sorted(pr.users()), [U1, U2], "U3 gone at once, U2 back");
  assert.deepEqual(changes, [[U1, U2]]);
  await h.clock.advance(10_000);
  assert.deepEqual(sorted(pr.users()), [U1, U2], "U2's removal was cancelled");
  assert.deepEqual(changes, [[U1, U2]]);
  h.rt.close();
});

test("presence debounce: unsubscribe and close leave no timer behind", async () => {
  const h = harness();
  const { ws, sub } = await h.connect(P, { seq: 0, epoch: "e1", online: [U1, U2] });
  ws.recv(presence(U2, "offline"));
  assert.ok(h.clock.delays().includes(3000));
  sub.unsubscribe();
  await flush();
  assert.deepEqual(h.clock.delays(), [], "no timer left (none keeps node alive)");
  assert.deepEqual(h.rt.presence(P).users(), []);

  const { ws: ws2 } = await h.connect(P, { seq: 0, epoch: "e1", online: [U1, U2] });
  ws2.recv(presence(U2, "offline"));
  h.rt.close();
  assert.deepEqual(h.clock.delays(), []);
});
