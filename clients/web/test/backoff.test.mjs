import { test } from "node:test";
import assert from "node:assert/strict";
import { harness, flush, P } from "./helpers.mjs";

// Fails `count` connection attempts in a row (handshake refused) and returns the delays the
// client chose before each retry.
async function failAttempts(h, count) {
  const delays = [];
  for (let i = 0; i < count; i++) {
    await flush();
    const ws = h.last();
    ws.drop();
    const d = h.clock.delays();
    assert.equal(d.length, 1, "exactly one retry timer is pending");
    delays.push(d[0]);
    await h.clock.advance(d[0]);
  }
  return delays;
}

test("backoff doubles from 0.5 s and is capped at 20 s (random() = 1 shows the bound)", async () => {
  const h = harness({ random: () => 0.999999 });
  h.rt.subscribe(P, () => {});
  const delays = await failAttempts(h, 9);
  const bounds = [500, 1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000];
  delays.forEach((d, i) => assert.ok(Math.abs(d - bounds[i] * 0.999999) < 1e-6, `attempt ${i}: ${d} vs bound ${bounds[i]}`));
  assert.equal(h.sockets.length, 10, "one new socket per retry");
  h.rt.close();
});

test("full jitter: delay = random() * bound, spread over the whole [0, bound) range", async () => {
  // a deterministic generator (LCG) instead of Math.random
  let s = 42;
  const draws = [];
  const random = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    draws.push(s / 2147483648);
    return s / 2147483648;
  };
  const h = harness({ random });
  h.rt.subscribe(P, () => {});
  const delays = await failAttempts(h, 200);
  const bound = (i) => Math.min(20000, 500 * 2 ** i);
  delays.forEach((d, i) => {
    assert.ok(d >= 0 && d < bound(i), `delay ${d} within [0, ${bound(i)})`);
    assert.equal(d, draws[i] * bound(i));
  });
  // at the cap, the delays cover the range rather than clustering
  const capped = delays.slice(10);
  assert.ok(Math.min(...capped) < 2000, "some short delays at the cap");
  assert.ok(Math.max(...capped) > 18000, "some long delays at the cap");
  const mean = capped.reduce((a, b) => a + b, 0) / capped.length;
  assert.ok(mean > 8000 && mean < 12000, `mean ${mean} near half the cap`);
  h.rt.close();
});

test("the attempt count resets after a connection stayed open 60 s, not before", async () => {
  const h = harness({ random: () => 1 });
  h.rt.subscribe(P, () => {});
  assert.deepEqual(await failAttempts(h, 4), [500, 1000, 2000, 4000]);
  await flush();
  // open for 59 s, then dropped: still counting (attempt 4 → 8 s)
  h.last().open();
  await h.clock.advance(59_000);
  h.last().drop();
  assert.deepEqual(h.clock.delays(), [8000]);
  await h.clock.advance(8000);
  await flush();
  // open for a full minute, then dropped: back to 0.5 s
  h.last().open();
  await h.clock.advance(60_000);
  h.last().drop();
  const retry = h.clock.delays();
  assert.deepEqual(retry, [500]);
  h.rt.close();
});

test("a getToken rejection is a failed attempt: backoff applies and no socket is made", async () => {
  let fails = 2;
  const tokens = [];
  const h = harness({
    random: () => 1,
    getToken: async () => {
      if (fails-- > 0) throw new Error("auth service down");
      tokens.push("good-token");
      return "good-token";
    },
  });
  h.rt.subscribe(P, () => {});
  await flush();
  assert.equal(h.sockets.length, 0);
  assert.deepEqual(h.clock.delays(), [500]);
  await h.clock.advance(499);
  assert.equal(h.sockets.length, 0, "no retry before the delay");
  await h.clock.advance(1);
  assert.deepEqual(h.clock.delays(), [1000], "second failure doubles the bound");
  await h.clock.advance(1000);
  assert.equal(h.sockets.length, 1);
  assert.deepEqual(h.last().protocols, ["devhive", "good-token"], "token travels as subprotocol");
  assert.equal(h.last().url, "wss://rt.example/dev");
  h.rt.close();
});

test("getToken is called for every connection attempt", async () => {
  const h = harness();
  await h.connect();
  assert.equal(h.tokenCalls, 1);
  h.last().drop();
  await h.clock.advance(250);
  assert.equal(h.tokenCalls, 2);
  assert.deepEqual(h.last().protocols, ["devhive", "token-2"]);
  h.rt.close();
});
