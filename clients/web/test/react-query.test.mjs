import { test } from "node:test";
import assert from "node:assert/strict";
import { QueryClient } from "@tanstack/react-query";
import { bindQueryClient, defaultKeyFor, RESOURCES } from "../dist/react-query.js";
import { harness, ev, P, Q } from "./helpers.mjs";

const KEYS = [
  ["message", P],
  ["message", P, "m1"],
  ["project_members", P],
  ["task", P],
  ["task", P, "t1"],
  ["task", P, "t2"],
  ["sprint", P],
  ["project", P],
  ["project", Q],
  ["task", Q],
  ["me"],
  ["direct_message"],
  ["search", { projectId: P, q: "x" }],
];

// A real QueryClient with one cached query per key; returns the keys now invalidated.
async function setup(options) {
  const h = harness();
  const qc = new QueryClient();
  for (const k of KEYS) qc.setQueryData(k, { cached: true });
  const unbind = bindQueryClient(h.rt, qc, options);
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  const invalidated = () =>
    qc
      .getQueryCache()
      .findAll()
      .filter((q) => q.state.isInvalidated)
      .map((q) => q.queryKey);
  const clear = () => qc.getQueryCache().findAll().forEach((q) => qc.setQueryData(q.queryKey, { cached: true }));
  // the first subscribed invalidated P's queries (the one refetch after subscribing): fresh again
  const atSubscribe = invalidated();
  clear();
  return { h, qc, ws, invalidated, clear, unbind, atSubscribe };
}

const sameKeys = (actual, expected) =>
  assert.deepEqual(
    actual.map((k) => JSON.stringify(k)).sort(),
    expected.map((k) => JSON.stringify(k)).sort(),
  );

test("every DESIGN event type maps to its resource key [resource, project_id]", async () => {
  const { h, ws, invalidated, clear } = await setup();
  const expected = {
    message_created: "message",
    member_added: "project_members",
    member_removed: "project_members",
    task_created: "task",
    task_updated: "task",
    task_deleted: "task",
    sprint_created: "sprint",
    sprint_updated: "sprint",
    sprint_deleted: "sprint",
    project_updated: "project",
    project_deleted: "project",
  };
  let n = 0;
  for (const [type, resource] of Object.entries(expected)) {
    clear();
    ws.recv({ type, project_id: P, data: {}, event_id: `e${++n}`, seq: n });
    const got = invalidated();
    // prefix matching: [resource, P] also covers [resource, P, id]
    sameKeys(got, KEYS.filter((k) => k[0] === resource && k[1] === P));
  }
  assert.equal(Object.keys(RESOURCES).filter((t) => t !== "direct_message").length, Object.keys(expected).length);
  h.rt.close();
});

test("cache_invalidate uses its resource; an id also invalidates [resource, project_id, id]", async () => {
  const { h, qc, ws, invalidated } = await setup();
  const calls = [];
  const orig = qc.invalidateQueries.bind(qc);
  qc.invalidateQueries = (f) => (calls.push(f.queryKey), orig(f));
  ws.recv(ev(1, { resource: "task", id: "t1" }));
  sameKeys(invalidated(), [
    ["task", P],
    ["task", P, "t1"],
    ["task", P, "t2"],
  ]);
  assert.deepEqual(calls, [
    ["task", P],
    ["task", P, "t1"],
  ]);
  h.rt.close();
});

test("cache_invalidate: resource read from data when absent at the top level; coalesced ids", async () => {
  const { h, qc, ws, invalidated } = await setup();
  const calls = [];
  const orig = qc.invalidateQueries.bind(qc);
  qc.invalidateQueries = (f) => (calls.push(f.queryKey), orig(f));
  ws.recv({
    type: "cache_invalidate",
    project_id: P,
    data: { resource: "sprint", ids: ["s1", "s2"], timestamp: "t" },
    event_id: "c1",
    seq: 1,
  });
  sameKeys(invalidated(), [["sprint", P]]);
  assert.deepEqual(calls, [
    ["sprint", P],
    ["sprint", P, "s1"],
    ["sprint", P, "s2"],
  ]);
  h.rt.close();
});

test("typing and presence invalidate nothing; direct_message invalidates [direct_message]", async () => {
  const { h, ws, invalidated } = await setup();
  ws.recv({ type: "typing", project_id: P, user_id: "u" });
  ws.recv({ type: "presence", project_id: P, user_id: "u", state: "online" });
  sameKeys(invalidated(), []);
  ws.recv({ type: "direct_message", user_id: "u", data: { text: "hi" }, event_id: "d1", seq: 3 });
  sameKeys(invalidated(), [["direct_message"]]);
  h.rt.close();
});

test("resync '*' invalidates everything; resync of one project only that project's queries", async () => {
  const { h, ws, invalidated, clear } = await setup();
  ws.recv({ type: "resync", project_id: "*" });
  sameKeys(invalidated(), KEYS);
  clear();
  ws.recv({ type: "resync", project_id: Q });
  sameKeys(
    invalidated(),
    KEYS.filter((k) => JSON.stringify(k).includes(Q)),
  );
  h.rt.close();
});

test("onReset invalidates every query whose key contains the project id (also nested)", async () => {
  const { h, invalidated } = await setup();
  h.last().drop();
  await h.clock.advance(250);
  h.last().open();
  h.last().recv({ type: "subscribed", project_id: P, seq: 50, epoch: "e1", reset: true });
  assert.deepEqual(h.resets, [P]);
  sameKeys(
    invalidated(),
    KEYS.filter((k) => JSON.stringify(k).includes(P)),
  );
  assert.ok(invalidated().some((k) => k[0] === "search"), "nested { projectId } matched");
  assert.ok(!invalidated().some((k) => k[1] === Q));
  h.rt.close();
});

test("the first subscribed invalidates the project's queries (a fetch at mount may predate it); recheck, resume, gap do not", async () => {
  const { h, ws, invalidated, atSubscribe } = await setup();
  const ofP = KEYS.filter((k) => JSON.stringify(k).includes(P));
  sameKeys(atSubscribe, ofP);
  assert.ok(atSubscribe.some((k) => k[0] === "search"), "nested { projectId } matched");
  await h.clock.advance(1500); // the recheck
  ws.recv({ type: "subscribed", project_id: P, seq: 0, epoch: "e1", recovered: [] });
  sameKeys(invalidated(), []);
  ws.drop();
  await h.clock.advance(250);
  const ws2 = h.last();
  ws2.open();
  ws2.recv({ type: "subscribed", project_id: P, seq: 0, epoch: "e1", recovered: [] }); // the resume
  sameKeys(invalidated(), []);
  ws2.recv(ev(2)); // a gap: 1 missing
  await h.clock.advance(1000);
  assert.equal(ws2.subscribes().at(-1).since, 0);
  ws2.recv({ type: "subscribed", project_id: P, seq: 2, epoch: "e1", recovered: [ev(1, { resource: "sprint" }), ev(2)] });
  sameKeys(invalidated(), KEYS.filter((k) => (k[0] === "task" || k[0] === "sprint") && k[1] === P));
  assert.deepEqual(h.resets, []);
  // another project's first subscribed: only its queries
  const { invalidated: inv2, h: h2 } = await setup();
  await h2.connect(Q, { seq: 7, epoch: "e1" });
  sameKeys(inv2(), KEYS.filter((k) => JSON.stringify(k).includes(Q)));
  h.rt.close();
  h2.rt.close();
});

test("custom keyFor replaces the mapping; null skips; unbind stops invalidation", async () => {
  const { h, ws, invalidated, clear, unbind } = await setup({
    keyFor: (e) => (e.type === "message_created" ? ["me"] : null),
  });
  ws.recv({ type: "message_created", project_id: P, event_id: "a", seq: 1 });
  sameKeys(invalidated(), [["me"]]);
  clear();
  ws.recv(ev(2));
  sameKeys(invalidated(), []);
  unbind();
  ws.recv({ type: "message_created", project_id: P, event_id: "b", seq: 3 });
  sameKeys(invalidated(), []);
  await h.connect(Q, { seq: 0, epoch: "e1" }); // a first subscribed: unbound too
  sameKeys(invalidated(), []);
  h.rt.close();
});

test("duplicates do not invalidate twice (dedupe happens before the binding)", async () => {
  const { h, qc, ws } = await setup();
  let calls = 0;
  const orig = qc.invalidateQueries.bind(qc);
  qc.invalidateQueries = (f) => (calls++, orig(f));
  ws.recv(ev(1, { id: undefined }));
  ws.recv(ev(1, { id: undefined }));
  assert.equal(calls, 1);
  h.rt.close();
});

test("defaultKeyFor", () => {
  assert.deepEqual(defaultKeyFor({ type: "task_updated", project_id: P }), ["task", P]);
  assert.deepEqual(defaultKeyFor({ type: "cache_invalidate", project_id: P, resource: "project_members" }), ["project_members", P]);
  assert.equal(defaultKeyFor({ type: "typing", project_id: P }), null);
  assert.equal(defaultKeyFor({ type: "something_new", project_id: P }), null);
});

test("a revoked subscription invalidates that project's queries", async () => {
  const { h, ws, invalidated } = await setup();
  ws.recv({ type: "unsubscribed", project_id: P, reason: "membership_revoked" });
  sameKeys(
    invalidated(),
    KEYS.filter((k) => JSON.stringify(k).includes(P)),
  );
  h.rt.close();
});

test("the binding needs only invalidateQueries (duck-typed client)", async () => {
  const h = harness();
  const seen = [];
  bindQueryClient(h.rt, { invalidateQueries: (f) => seen.push(f) });
  const { ws } = await h.connect(P, { seq: 0, epoch: "e1" });
  // the first subscribed: a predicate over the project's queries
  assert.equal(seen.length, 1);
  assert.equal(seen[0].queryKey, undefined);
  assert.equal(seen[0].predicate({ queryKey: ["task", P, "t1"] }), true);
  assert.equal(seen[0].predicate({ queryKey: ["task", Q] }), false);
  ws.recv({ type: "sprint_created", project_id: P, event_id: "s", seq: 1 });
  assert.deepEqual(seen.slice(1).map((f) => f.queryKey), [["sprint", P]]);
  h.rt.close();
});
