// Test doubles written for these tests: a fake clock with timers, a fake WebSocket, a harness.
import { createRealtime } from "../dist/index.js";

export const P = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
export const Q = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
/** User ids (presence, typing). */
export const U1 = "11111111-1111-4111-8111-111111111111";
export const U2 = "22222222-2222-4222-8222-222222222222";
export const U3 = "33333333-3333-4333-8333-333333333333";
export const U4 = "44444444-4444-4444-8444-444444444444";

/** Drains every pending promise callback (one macrotask turn). Not a sleep: no time passes. */
export const flush = () => new Promise((r) => setImmediate(r));

export function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  let ids = 0;
  const timers = new Map();
  const clock = {
    now: () => t,
    setTimeout: (fn, ms) => {
      const id = ++ids;
      timers.set(id, { at: t + Math.max(0, ms || 0), ms, fn });
      return id;
    },
    clearTimeout: (id) => void timers.delete(id),
    /** Delays of the timers still pending, in order of creation. */
    delays: () => [...timers.values()].map((x) => x.ms),
    /** Runs due timers in time order, draining promises after each; time ends at now + ms. */
    async advance(ms) {
      const end = t + ms;
      await flush();
      for (;;) {
        let best = null;
        for (const [id, x] of timers) if (x.at <= end && (!best || x.at < best[1].at)) best = [id, x];
        if (!best) break;
        timers.delete(best[0]);
        t = best[1].at;
        best[1].fn();
        await flush();
      }
      t = end;
    },
  };
  return clock;
}

export function fakeWebSocket() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.closedByClient = false;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error("send on a socket that is not open");
      this.sent.push(JSON.parse(data));
    }
    close() {
      if (this.readyState === 3) return;
      this.closedByClient = true;
      this.readyState = 3;
      // browsers report close later, asynchronously
      queueMicrotask(() => this.onclose && this.onclose({ code: 1000 }));
    }
    // --- driven by the tests (the "server" side) ---
    open() {
      this.readyState = 1;
      this.onopen && this.onopen({});
    }
    recv(frame) {
      this.onmessage && this.onmessage({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }
    /** The server or network ends the connection (handshake failure if never opened). */
    drop() {
      this.readyState = 3;
      this.onerror && this.onerror({});
      this.onclose && this.onclose({ code: 1006 });
    }
    subscribes() {
      return this.sent.filter((f) => f.action === "subscribe");
    }
  }
  return { FakeWebSocket, sockets };
}

const b64url = (s) => Buffer.from(s).toString("base64url");
export const jwt = (payload) => `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(JSON.stringify(payload))}.sig`;

/** A client wired to fakes; records statuses, resets, revocations and events. */
export function harness(options = {}) {
  const clock = fakeClock();
  const { FakeWebSocket, sockets } = fakeWebSocket();
  const win = new EventTarget();
  const doc = new EventTarget();
  doc.visibilityState = "visible";
  let n = 0;
  const h = {
    clock,
    sockets,
    win,
    doc,
    tokenCalls: 0,
    tokenFor: (i) => `token-${i}`,
    statuses: [],
    resets: [],
    revoked: [],
    events: [],
    last: () => sockets[sockets.length - 1],
  };
  h.rt = createRealtime({
    url: "wss://rt.example/dev",
    getToken: async () => {
      h.tokenCalls++;
      return h.tokenFor(++n);
    },
    WebSocket: FakeWebSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    window: win,
    document: doc,
    ...options,
  });
  h.rt.onStatus((s) => h.statuses.push(s));
  h.rt.onReset((p) => h.resets.push(p));
  h.rt.onRevoked((p, reason) => h.revoked.push([p, reason]));
  h.rt.onEvent((e, p) => h.events.push([p, e]));
  /** Subscribes to `project`, opens the socket and answers `subscribed` with `reply` fields. */
  h.connect = async (project = P, reply = { seq: 0, epoch: "e1" }, handler = () => {}) => {
    const sub = h.rt.subscribe(project, handler);
    await flush();
    const ws = h.last();
    ws.open();
    ws.recv({ type: "subscribed", message: "subscribed", project_id: project, ...reply });
    return { sub, ws };
  };
  /** The seqs (or event_ids) delivered so far, in order. */
  h.seqs = () => h.events.map(([, e]) => e.seq ?? e.event_id);
  return h;
}

export const ev = (seq, extra = {}) => ({
  type: "cache_invalidate",
  project_id: P,
  resource: "task",
  action: "UPDATE",
  id: `t${seq}`,
  event_id: `ev-${seq}`,
  seq,
  timestamp: "2026-01-01T00:00:00Z",
  ...extra,
});
