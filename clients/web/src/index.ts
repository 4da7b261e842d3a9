// DevHive Realtime browser client. No runtime dependencies.
// Contract: DESIGN.md "Client protocol", "Sequence and recovery", "Web client".

export type Status = "connecting" | "open" | "closed";

/** A frame the server pushed: a project event, `typing`, `presence`, `resync`, `direct_message`. */
export interface RealtimeEvent {
  type: string;
  project_id?: string;
  event_id?: string;
  seq?: number;
  data?: any;
  [key: string]: any;
}

/** The part of the browser's WebSocket the client uses. */
export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: { data: any }) => any) | null;
  onclose: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
}

/** Something with addEventListener/removeEventListener (window, document). */
export interface EventSourceLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
  visibilityState?: string;
}

export interface RealtimeOptions {
  /** wss://HOST/STAGE */
  url: string;
  /** Called for every connection attempt and every refresh; a rejection is a failed attempt. */
  getToken: () => Promise<string>;
  /** Keepalive ping interval (default 480000 = 8 min; API Gateway's idle cut is 10 min). */
  pingIntervalMs?: number;
  /** API Gateway's connection lifetime (default 7200000 = 2 h). */
  maxConnectionMs?: number;
  /** Replace the connection this long before maxConnectionMs (default 300000 = 5 min). */
  replaceBeforeMs?: number;
  /** Refresh the token this long before its exp (default 60000), at most 10% of what is left. */
  refreshBeforeMs?: number;
  /** How long a missing seq may stay missing before the client re-subscribes with since (default 1000). */
  gapWaitMs?: number;
  /** Backoff: delay = random() * min(backoffMaxMs, backoffBaseMs * 2^attempt) (defaults 500, 20000). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** A connection open this long resets the attempt count (default 60000). */
  stableMs?: number;
  /** How many event_ids each subscription remembers for de-duplication (default 1000). */
  dedupeSize?: number;
  /** Injectable for tests; default to the globals. `null` disables the window/document hooks. */
  WebSocket?: new (url: string, protocols: string[]) => WebSocketLike;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
  random?: () => number;
  now?: () => number;
  window?: EventSourceLike | null;
  document?: EventSourceLike | null;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface Realtime {
  /** One socket per subscribed project; several handlers of one project share it. */
  subscribe(projectId: string, handler: (event: RealtimeEvent) => void): Subscription;
  /** Aggregate over all sockets: "connecting" if any is, else "closed" if any is (or none exist), else "open". */
  onStatus(handler: (status: Status) => void): () => void;
  /** Events may have been lost (server said reset, epoch changed, or a reconnect could not resume): refetch the project. */
  onReset(handler: (projectId: string) => void): () => void;
  /** Every delivered event of every subscription (after de-duplication). */
  onEvent(handler: (event: RealtimeEvent, projectId: string) => void): () => void;
  /** The server ended a subscription (`unsubscribed` with a reason, or `forbidden`/`not_found` on subscribe); it is dropped. */
  onRevoked(handler: (projectId: string, reason: string) => void): () => void;
  readonly status: Status;
  close(): void;
}

interface Conn {
  ws?: WebSocketLike;
  /** detached: its frames and close are ignored */
  dead?: boolean;
  /** got a `subscribed` reply */
  subd?: boolean;
  /** the last subscribe frame carried `since` */
  since?: boolean;
  /** opened at (now()) */
  at?: number;
  t: unknown[];
}

/** `exp` (epoch seconds) of a JWT's payload, undefined when it has none. No verification. */
export function tokenExp(token: string): number | undefined {
  try {
    const b = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(b + "===".slice((b.length + 3) % 4))).exp;
    return typeof exp == "number" ? exp : undefined;
  } catch {}
}

export function createRealtime(o: RealtimeOptions): Realtime {
  const g: any = globalThis;
  const WS = o.WebSocket || g.WebSocket;
  const st = o.setTimeout || ((f, ms) => g.setTimeout(f, ms));
  const ct = o.clearTimeout || ((h) => g.clearTimeout(h));
  const rnd = o.random || Math.random;
  const now = o.now || Date.now;
  const win = o.window !== undefined ? o.window : g.window;
  const doc = o.document !== undefined ? o.document : g.document;
  const pingMs = o.pingIntervalMs || 48e4;
  const maxConn = o.maxConnectionMs || 72e5;
  const replaceMs = Math.max(maxConn - (o.replaceBeforeMs ?? 3e5), maxConn / 2);
  const refreshMs = o.refreshBeforeMs ?? 6e4;
  const gapMs = o.gapWaitMs ?? 1e3;
  const base = o.backoffBaseMs || 500;
  const cap = o.backoffMaxMs || 2e4;
  const stable = o.stableMs || 6e4;
  const dedupe = o.dedupeSize || 1e3;

  const L = { s: new Set<Function>(), r: new Set<Function>(), e: new Set<Function>(), v: new Set<Function>() };
  const emit = (hs: Set<Function>, ...a: unknown[]) =>
    hs.forEach((h) => {
      try {
        h(...a);
      } catch (e) {
        console.error(e);
      }
    });
  const listen = (hs: Set<Function>) => (h: Function) => {
    const w = (...a: unknown[]) => h(...a);
    hs.add(w);
    return () => void hs.delete(w);
  };

  type Channel = ReturnType<typeof channel>;
  const channels = new Map<string, Channel>();
  let status: Status = "closed";
  let warned = false;
  let offline = false;
  let closed = false;

  const update = () => {
    const ss = [...channels.values()].map((c) => c.status);
    const s: Status = ss.includes("connecting") ? "connecting" : !ss.length || ss.includes("closed") ? "closed" : "open";
    if (s != status) emit(L.s, (status = s));
  };
  const send = (c: Conn | null, f: object) => c && c.ws && c.ws.readyState == 1 && c.ws.send(JSON.stringify(f));
  const kill = (c: Conn | null) => {
    if (c) {
      c.dead = true;
      c.t.forEach(ct);
      try {
        c.ws && c.ws.close(1000);
      } catch {}
    }
  };

  function channel(p: string) {
    const handlers = new Set<Function>();
    let cur: Conn | null = null; // the connection events come from
    let next: Conn | null = null; // its replacement, until subscribed
    let attempt = 0;
    let retryT: unknown;
    let gapT: unknown;
    let seq: number | undefined; // every seq <= this was seen
    let top = 0; // highest seq known to exist
    let epoch: string | undefined;
    let ever = false; // subscribed at least once
    const pending = new Set<number>(); // seqs above `seq` already delivered
    const seen = new Set<string>(); // recent event_ids, oldest first

    const ch = {
      handlers,
      status: "closed" as Status,
      open,
      close() {
        kill(cur);
        kill(next);
        cur = next = null;
        ct(retryT);
        ct(gapT);
      },
      wake() {
        if (!cur && !offline) {
          attempt = 0;
          open();
        }
      },
      stop: () => ct(retryT),
    };
    const set = (s: Status) => {
      ch.status = s;
      update();
    };

    async function open() {
      ct(retryT);
      const c: Conn = { t: [] };
      let token: string, ws: WebSocketLike;
      if (cur) next = c;
      else {
        cur = c;
        set("connecting");
      }
      try {
        token = await o.getToken();
      } catch {
        return fail(c);
      }
      if (c.dead) return;
      try {
        ws = c.ws = new WS(o.url, ["devhive", token]);
      } catch {
        return fail(c);
      }
      ws.onopen = () => {
        if (c.dead) return;
        c.at = now();
        if (c == cur) set("open");
        subscribe(c);
        const ping = () =>
          c.t.push(
            st(() => {
              send(c, { action: "ping" });
              ping();
            }, pingMs),
          );
        ping();
        c.t.push(st(() => c == cur && !next && open(), replaceMs));
        refresh(c, token);
      };
      ws.onmessage = (m) => c.dead || frame(c, m.data);
      ws.onclose = () => fail(c);
    }

    // A connection ended or could not be made. `now0`: reconnect at once, not a failed attempt.
    function fail(c: Conn, now0?: boolean) {
      if (c.dead) return;
      kill(c);
      if (c.at! <= now() - stable) attempt = 0;
      const d = now0 ? 0 : rnd() * Math.min(cap, base * 2 ** attempt++);
      if (c == next) next = null;
      else {
        cur = next;
        next = null;
        set(cur ? (cur.at ? "open" : "connecting") : "closed");
        if (cur) return;
      }
      if (!offline) now0 ? open() : (retryT = st(open, d));
    }

    function refresh(c: Conn, token: string) {
      const exp = tokenExp(token);
      const left = exp! * 1e3 - now();
      if (left > 0)
        c.t.push(
          st(
            () =>
              o.getToken().then(
                (t) => {
                  if (!c.dead) {
                    send(c, { action: "refresh", token: t });
                    refresh(c, t);
                  }
                },
                () => {}, // the server's token_expired will make us reconnect
              ),
            left - Math.min(refreshMs, left / 10),
          ),
        );
    }

    function subscribe(c: Conn | null) {
      const f: any = { action: "subscribe", project_id: p };
      if (c && (c.since = seq != null)) {
        f.since = seq;
        if (epoch != null) f.epoch = epoch;
      }
      send(c, f);
    }

    function gap() {
      if (seq != null && top > seq) {
        gapT ||= st(() => {
          gapT = 0;
          if (top > seq!) subscribe(cur);
          gap();
        }, gapMs);
      } else {
        ct(gapT);
        gapT = 0;
      }
    }

    function advance() {
      if (seq == null) return;
      pending.forEach((s) => s <= seq! && pending.delete(s));
      while (pending.delete(seq + 1)) seq++;
      if (top < seq) top = seq;
      gap();
    }

    function deliver(ev: RealtimeEvent) {
      const s = ev.seq;
      const pid = ev.project_id;
      if (typeof s == "number" && ev.type != "direct_message" && (!pid || String(pid).toLowerCase() == p)) {
        if (s <= seq! || pending.has(s)) return;
        if (seq != null || !ever) {
          pending.add(s);
          if (s > top) top = s;
          advance();
        }
      }
      const id = ev.event_id;
      if (id) {
        if (seen.has(id)) return;
        seen.add(id);
        if (seen.size > dedupe) seen.delete(seen.values().next().value!);
      }
      emit(handlers, ev);
      emit(L.e, ev, p);
    }

    function subscribed(c: Conn, f: any) {
      const overlap = c == next;
      const first = !ever;
      const s = f.seq;
      if (overlap) {
        // make-before-break: the old connection goes only now
        kill(cur);
        cur = c;
        next = null;
      }
      ever = c.subd = true;
      if (typeof s != "number") {
        // a server without sequence numbers: a reconnect may have lost events
        if (!first && !overlap) emit(L.r, p);
      } else if (c.since && !f.reset && f.epoch == epoch) {
        (f.recovered || []).forEach(deliver);
        if (s > top) top = s;
        advance();
      } else {
        const lost = c.since || f.reset || (!first && !overlap);
        if (lost) {
          pending.clear();
          top = s;
        }
        epoch = f.epoch;
        seq = s;
        advance();
        if (lost) emit(L.r, p);
      }
    }

    function revoke(reason: string) {
      if (channels.get(p) == ch) {
        channels.delete(p);
        ch.close();
        update();
        emit(L.v, p, reason);
      }
    }

    function frame(c: Conn, data: unknown) {
      let f: any;
      try {
        f = JSON.parse(data as string);
      } catch {}
      const t = f && f.type;
      if (typeof t != "string") {
        if (!warned) console.warn("devhive-realtime: ignoring a frame that is not a JSON object with a type", data);
        warned = true;
      } else if (t == "subscribed") subscribed(c, f);
      else if (t == "reconnect") c == cur && !next && open();
      else if (t == "unsubscribed") f.reason && revoke(f.reason);
      else if (t == "error") {
        const code = f.code;
        if (code == "token_expired") fail(c, true);
        else if (!c.subd) {
          if (code == "forbidden" || code == "not_found") revoke(code);
          else fail(c);
        }
      } else if (t != "pong" && t != "refreshed") deliver(f);
    }

    return ch;
  }

  const each = (k: "wake" | "stop") => () => channels.forEach((c) => c[k]());
  const wake = each("wake");
  const onOffline = () => {
    offline = true;
    each("stop")();
  };
  const onOnline = () => {
    offline = false;
    wake();
  };
  const onVisible = () => doc!.visibilityState == "visible" && wake();
  const hook = (on: boolean) => {
    const m = on ? "addEventListener" : "removeEventListener";
    win && (win[m]("online", onOnline), win[m]("offline", onOffline));
    doc && doc[m]("visibilitychange", onVisible);
  };
  hook(true);

  return {
    subscribe(projectId, handler) {
      const p = String(projectId).toLowerCase();
      let c = channels.get(p);
      const h = (e: RealtimeEvent) => handler(e);
      if (!closed) {
        if (!c) {
          channels.set(p, (c = channel(p)));
          c.open();
        }
        c.handlers.add(h);
      }
      return {
        unsubscribe() {
          if (c && c.handlers.delete(h) && !c.handlers.size && channels.get(p) == c) {
            channels.delete(p);
            c.close();
            update();
          }
        },
      };
    },
    onStatus: listen(L.s),
    onReset: listen(L.r),
    onEvent: listen(L.e),
    onRevoked: listen(L.v),
    get status() {
      return status;
    },
    close() {
      closed = true;
      hook(false);
      channels.forEach((c) => c.close());
      channels.clear();
      update();
    },
  };
}
