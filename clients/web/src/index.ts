// DevHive Realtime browser client. No runtime dependencies.
// Contract: docs/design.md "Client protocol", "Sequence and recovery", "Web client",
// "Presence, typing, direct messages" (presence, typing and direct-message recovery).

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
  /**
   * After a connection's first `subscribed` reply, ask again with `since` this much later, once: the
   * server's subscriber index may have missed an event committed meanwhile (default 1500; 0: never).
   */
  recheckMs?: number;
  /** A user announced `offline` stays in `presence().users()` this long, unless back `online` (default 3000; 0: none). */
  presenceDebounceMs?: number;
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

/** A live set of user ids: a project's online users (`rt.presence`) or its typing users (`rt.typing`). */
export interface UserSet {
  /** The current members, in no particular order. */
  users(): string[];
  /** Called with the new members whenever the set changes; returns an "off" function. */
  onChange(handler: (users: string[]) => void): () => void;
}

export interface Typing extends UserSet {
  /** Call on keystrokes: sends `typing` at most once per 2 s, only while subscribed to the project. */
  notify(): void;
}

export interface Realtime {
  /** One socket per subscribed project; several handlers of one project share it. */
  subscribe(projectId: string, handler: (event: RealtimeEvent) => void): Subscription;
  /** Aggregate over all sockets: "connecting" if any is, else "closed" if any is (or none exist), else "open". */
  onStatus(handler: (status: Status) => void): () => void;
  /** Events may have been lost (server said reset, epoch changed, or a reconnect could not resume): refetch the project. */
  onReset(handler: (projectId: string) => void): () => void;
  /**
   * A subscription's first `subscribed` reply (a fresh subscribe, without `since`): the stream holds
   * from here, and data fetched before may predate it: refetch the project once. Not for resumes,
   * rechecks, gap re-subscribes or replacements (their events are recovered).
   */
  onSubscribed(handler: (projectId: string) => void): () => void;
  /** Every delivered event of every subscription (after de-duplication). */
  onEvent(handler: (event: RealtimeEvent, projectId: string) => void): () => void;
  /** The server ended a subscription (`unsubscribed` with a reason, or `forbidden`/`not_found` on subscribe); it is dropped. */
  onRevoked(handler: (projectId: string, reason: string) => void): () => void;
  /** Who is online in a project: rebuilt from `online` at every `subscribed`, then updated by `presence` (an `offline` user stays presenceDebounceMs). */
  presence(projectId: string): UserSet;
  /** Who typed in a project in the last 3 s; `notify()` tells the others you are typing. */
  typing(projectId: string): Typing;
  /** Direct messages of the user's stream, each once, in seq order, across reconnects (recovered with `subscribe_user`). */
  onDirect(handler: (message: RealtimeEvent) => void): () => void;
  /** Direct messages may have been lost (`reset`, epoch changed): refetch them. */
  onDirectReset(handler: () => void): () => void;
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
  /** the user stream its last subscribe_user carried `since` for */
  us?: unknown;
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
  const recheck = o.recheckMs ?? 1500;
  const pdMs = o.presenceDebounceMs ?? 3e3;

  const L = {
    s: new Set<Function>(),
    r: new Set<Function>(),
    b: new Set<Function>(), // onSubscribed
    e: new Set<Function>(),
    v: new Set<Function>(),
    d: new Set<Function>(), // onDirect
    u: new Set<Function>(), // onDirectReset
  };
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

  // The sequence state of one stream (DESIGN "Sequence and recovery"): a project's events, or the
  // user's direct messages (`user#U`, seqs of its own). One copy of the rules for both: what was
  // seen (seq, event_id), a gap left open gapWaitMs asks again (`resub`), what a `subscribed` /
  // `subscribed_user` reply means. `track(ev)`: the frame's seq belongs to this stream. `hold`:
  // frames above a gap wait for it (direct messages keep their order); otherwise, for cache
  // invalidations where order does not matter, they are delivered at once.
  function stream(
    out: (ev: RealtimeEvent) => void,
    resub: () => void,
    lost: () => void,
    track: (ev: RealtimeEvent) => boolean,
    hold?: boolean,
  ) {
    let gapT: unknown;
    let seq: number | undefined; // every seq <= this was seen
    let top = 0; // highest seq known to exist
    let epoch: string | undefined;
    let ever = false; // got a reply at least once
    const pending = new Map<number, RealtimeEvent | 0>(); // seqs above `seq`: delivered (0) or held
    const seen = new Set<string>(); // recent event_ids, oldest first

    function gap() {
      if (seq != null && top > seq) {
        gapT ||= st(() => {
          gapT = 0;
          if (top > seq!) resub();
          gap();
        }, gapMs);
      } else {
        ct(gapT);
        gapT = 0;
      }
    }

    function advance() {
      if (seq == null) return;
      pending.forEach((_, s) => s <= seq! && pending.delete(s));
      for (let f; pending.has(seq + 1); f && show(f)) {
        f = pending.get(++seq);
        pending.delete(seq);
      }
      if (top < seq) top = seq;
      gap();
    }

    function show(ev: RealtimeEvent) {
      const id = ev.event_id;
      if (id) {
        if (seen.has(id)) return;
        seen.add(id);
        if (seen.size > dedupe) seen.delete(seen.values().next().value!);
      }
      out(ev);
    }

    function deliver(ev: RealtimeEvent) {
      const s = ev.seq;
      if (typeof s == "number" && track(ev)) {
        if (s <= seq! || pending.has(s)) return;
        if (seq != null || !ever) {
          const keep = hold && seq != null;
          pending.set(s, keep ? ev : 0);
          if (s > top) top = s;
          advance();
          if (keep) return;
        }
      }
      show(ev);
    }

    return {
      deliver,
      /** `since`/`epoch` for a (re)subscribe; none while no seq is known */
      ask: (): { since?: number; epoch?: string } => (seq == null ? {} : epoch == null ? { since: seq } : { since: seq, epoch }),
      /** a reply; `since`: its request carried since; `quiet`: nothing can have been missed without since. True for the first */
      reply(f: any, since: unknown, quiet: boolean) {
        const first = !ever;
        const s = f.seq;
        ever = true;
        if (typeof s != "number") {
          // a server without sequence numbers: a reconnect may have lost events
          if (!first && !quiet) lost();
        } else if (since && !f.reset && f.epoch == epoch) {
          (f.recovered || []).forEach(deliver);
          if (s > top) top = s;
          // held frames: the reply covers every seq up to s, so one missing from it does not exist
          if (hold)
            for (let x; seq! < s; x && show(x)) {
              x = pending.get(++seq!);
              pending.delete(seq!);
            }
          advance();
        } else {
          const l = since || f.reset || (!first && !quiet);
          if (l) {
            pending.clear();
            top = s;
          }
          epoch = f.epoch;
          seq = s;
          advance();
          if (l) lost();
        }
        return first;
      },
      /** asks again with since, as a gap does (the recheck); nothing while no seq is known */
      again: () => seq != null && resub(),
      stop: () => ct(gapT),
    };
  }

  // A frame of the user's own stream (`user#U`, seqs of its own): a direct message, or any frame
  // that names a user and no project. Its seq is never a project's; nor is that of any frame
  // without `project_id` (counting it would mark a project seq seen and drop the real event).
  const userFrame = (ev: RealtimeEvent) => ev.type == "direct_message" || (ev.project_id == null && ev.user_id != null);

  // Direct messages: one stream per client, whichever sockets carry its frames (the server sends
  // them to every connection of the user). `subscribe_user` goes on one subscribed connection,
  // `uc`, and again on the next one to subscribe once `uc` is gone.
  const user = () =>
    stream(
      (ev) => emit(L.d, ev),
      () => userSub(),
      () => emit(L.u),
      () => true,
      true,
    );
  let us = user();
  let uc: Conn | null = null;
  function userSub(c?: Conn | null) {
    if (!L.d.size) return;
    if (!c) {
      c = uc && !uc.dead ? uc : null;
      channels.forEach((ch) => (c ||= ch.live()));
    }
    if (c) {
      const a = us.ask();
      c.us = "since" in a && us;
      send(c, { action: "subscribe_user", ...a });
      uc = c;
    }
  }

  // Presence and typing: ephemeral per-project state, never in a stream (no seq, not recovered),
  // kept apart from the channel so that handles made before `subscribe` see it.
  const userSet = () => {
    const u = new Set<string>();
    const l = new Set<Function>();
    const users = () => [...u];
    return {
      users,
      onChange: listen(l),
      /** adds (on) or removes one user; listeners hear of changes only */
      put(id: string, on: boolean) {
        if (u.has(id) != on) {
          on ? u.add(id) : u.delete(id);
          emit(l, users());
        }
      },
      /** replaces every member */
      all(ids: string[]) {
        const n = new Set(ids.map(String));
        if (n.size != u.size || [...n].some((i) => !u.has(i))) {
          u.clear();
          n.forEach((i) => u.add(i));
          emit(l, users());
        }
      },
    };
  };
  type Room = ReturnType<typeof mkRoom>;
  // tt, pt: per user, the timer that removes them from ty (typing), on (presence debounce)
  const mkRoom = () => ({ on: userSet(), ty: userSet(), tt: new Map<string, unknown>(), pt: new Map<string, unknown>(), at: -Infinity });
  const rooms = new Map<string, Room>();
  const room = (p: string) => rooms.get(p) || rooms.set(p, mkRoom()).get(p)!;
  // A user's frame for set s: cancels the removal pending in m, adds them (`add`), then removes
  // them `ms` later (at once for 0). A typing user stays 3 s after their last frame; a user
  // announced offline stays pdMs, so a reload (offline, then online again) changes nothing.
  function mark(s: Room["on"], m: Map<string, unknown>, id: string, add: boolean, ms?: number) {
    ct(m.get(id));
    m.delete(id);
    if (add) s.put(id, true);
    if (ms != null) {
      const x = () => {
        m.delete(id);
        s.put(id, false);
      };
      ms ? m.set(id, st(x, ms)) : x();
    }
  }
  const clear = (m: Map<string, unknown>) => (m.forEach(ct), m.clear());

  function channel(p: string) {
    const handlers = new Set<Function>();
    let cur: Conn | null = null; // the connection events come from
    let next: Conn | null = null; // its replacement, until subscribed
    let attempt = 0;
    let retryT: unknown;
    const sq = stream(
      (ev) => {
        emit(handlers, ev);
        emit(L.e, ev, p);
      },
      () => subscribe(cur),
      () => emit(L.r, p),
      (ev) => ev.project_id != null && !userFrame(ev) && String(ev.project_id).toLowerCase() == p,
    );

    const ch = {
      handlers,
      status: "closed" as Status,
      open,
      close() {
        kill(cur);
        kill(next);
        cur = next = null;
        ct(retryT);
        sq.stop();
        // nobody is known online or typing in a project not subscribed to
        const r = rooms.get(p);
        if (r) {
          clear(r.tt);
          clear(r.pt);
          r.on.all([]);
          r.ty.all([]);
        }
      },
      wake() {
        if (!cur && !offline) {
          attempt = 0;
          open();
        }
      },
      stop: () => ct(retryT),
      /** the connection to send on: open and subscribed, else null */
      live: () => (cur && cur.subd && !cur.dead && cur.ws!.readyState == 1 ? cur : null),
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
      const a = sq.ask();
      if (c) c.since = "since" in a;
      send(c, { action: "subscribe", project_id: p, ...a });
    }

    function subscribed(c: Conn, f: any) {
      const overlap = c == next;
      if (overlap) {
        // make-before-break: the old connection goes only now
        kill(cur);
        cur = c;
        next = null;
      }
      // The subscriber index lags the subscription (up to ~1 s): an event committed meanwhile
      // reached the others, not c, and only a later one would show the gap. So once per
      // connection (this recheck's own reply schedules none), ask again with since.
      if (!c.subd && recheck)
        c.t.push(
          st(() => {
            sq.again();
            uc == c && us.again();
          }, recheck),
        );
      c.subd = true;
      const first = sq.reply(f, c.since, overlap);
      // an older server sends no `online`: what we know stays; pending removals are settled by it
      if (Array.isArray(f.online)) {
        const r = room(p);
        clear(r.pt);
        r.on.all(f.online);
      }
      if (!uc || uc.dead) userSub(c);
      // the stream holds from the first reply on; what the app fetched before may predate it
      first && emit(L.b, p);
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
      else if (t == "subscribed_user") L.d.size && us.reply(f, c.us == us, false);
      else if (t == "reconnect") c == cur && !next && open();
      else if (t == "unsubscribed") f.reason && revoke(f.reason);
      else if (t == "error") {
        const code = f.code;
        if (code == "token_expired") fail(c, true);
        else if (!c.subd) {
          if (code == "forbidden" || code == "not_found") revoke(code);
          else fail(c);
        }
      } else if (t != "pong" && t != "refreshed") {
        const u = f.user_id;
        if (u != null) {
          const r = room(p);
          const id = String(u);
          const on = f.state == "online";
          if (t == "presence" && (on || f.state == "offline")) mark(r.on, r.pt, id, on, on ? undefined : pdMs);
          if (t == "typing") mark(r.ty, r.tt, id, true, 3e3);
        }
        sq.deliver(f);
        if (t == "direct_message" && L.d.size) us.deliver(f);
      }
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
  const lc = (id: string) => String(id).toLowerCase();

  return {
    subscribe(projectId, handler) {
      const p = lc(projectId);
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
    onSubscribed: listen(L.b),
    onEvent: listen(L.e),
    onRevoked: listen(L.v),
    presence(projectId) {
      const { users, onChange } = room(lc(projectId)).on;
      return { users, onChange };
    },
    typing(projectId) {
      const p = lc(projectId);
      const r = room(p);
      const { users, onChange } = r.ty;
      return {
        users,
        onChange,
        notify() {
          const ch = channels.get(p);
          const c = ch && ch.live();
          if (c && now() - r.at >= 2e3) {
            r.at = now();
            send(c, { action: "typing", project_id: p });
          }
        },
      };
    },
    onDirect(handler) {
      // the first handler starts a fresh stream at the server's head (no old messages replayed)
      if (!L.d.size) {
        us.stop();
        us = user();
      }
      const off = listen(L.d)(handler);
      if (L.d.size == 1) userSub();
      return () => {
        off();
        L.d.size || us.stop();
      };
    },
    onDirectReset: listen(L.u),
    get status() {
      return status;
    },
    close() {
      closed = true;
      hook(false);
      channels.forEach((c) => c.close());
      channels.clear();
      us.stop();
      update();
    },
  };
}
