// The convergence checker (docs/design.md "Guarantees under AWS's faults"): whatever AWS does
// within its documented behaviour, every subscribed client ends with the database's state.
//
// Per seeded schedule: DynamoDB Local behind tests/faults/dynamodb.py (GSI lag, throttling,
// 500s, transaction conflicts), the real dev server (`devhive-realtime dev --store dynamodb`,
// its events table on DynamoDB too, Postgres membership and the relay) with Lambda's and API
// Gateway's faults on (duplicate, late and failing invocations; 429s and 500s on posts), and
// real `clients/web` clients in Node, each an app-like cache bound with `bindQueryClient`: the
// lists it shows, refetched from Postgres on every invalidation as a React Query app would. A
// writer runs the DevHive statements (inserts, updates, deletes, bulk updates that coalesce)
// while clients reload at random and right before a project's last write. Then the writes stop
// and every client's lists are compared with the database until they match or the settle time
// runs out. Also checked: no event reaches an app twice, none reaches another project's app;
// a member removed from its project is told (unsubscribed) and receives no data written after
// the removal committed later than 1 s after it.
//
// Prints, per schedule and in total:
//   chaos: S schedules, W writes, C clients, F faults injected: D diverged, converged p99 X s
// and `chaos: N passed, M failed` (schedules) for make test's summary. Exit 1 on a divergence.
// Variables: CHAOS_SEEDS ("1-20" or "3,5"), CHAOS_WRITES (per schedule), CHAOS_PROJECTS,
// CHAOS_REMOVALS (members removed a schedule, default 2),
// CHAOS_CLIENTS (per project), CHAOS_DURATION_MS (the writes spread over it),
// CHAOS_SETTLE_MS, CHAOS_GSI_LAG_MS, CHAOS_FAULTS (all | none), CHAOS_RECHECK_MS (the clients'
// recheckMs; unset: the client's default). Needs AWS_ENDPOINT_URL_DYNAMODB and DATABASE_URL
// (tests/with-services.sh) and target/debug/devhive-realtime.
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { once } from "node:events";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createRealtime } from "../../clients/web/dist/index.js";
import { bindQueryClient } from "../../clients/web/dist/react-query.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const BIN = process.env.DEVHIVE_BIN || `${REPO}target/debug/devhive-realtime`;
const num = (name, d) => (process.env[name] == null || process.env[name] === "" ? d : Number(process.env[name]));
const SEEDS = seeds(process.env.CHAOS_SEEDS || "1-2");
const WRITES = num("CHAOS_WRITES", 150);
const PROJECTS = num("CHAOS_PROJECTS", 3);
const CLIENTS = num("CHAOS_CLIENTS", 3);
const DURATION_MS = num("CHAOS_DURATION_MS", 8000);
const SETTLE_MS = num("CHAOS_SETTLE_MS", 10000);
const LAG_MS = num("CHAOS_GSI_LAG_MS", 1000);
const FAULTS = process.env.CHAOS_FAULTS || "all";
const RECHECK = process.env.CHAOS_RECHECK_MS;
const REMOVALS = num("CHAOS_REMOVALS", 2);
const RESOURCES = {
  task: "SELECT id, title, status, sprint_id FROM tasks WHERE project_id = $1 ORDER BY id",
  message: "SELECT id, content FROM messages WHERE project_id = $1 ORDER BY id",
  sprint: "SELECT id, name, status FROM sprints WHERE project_id = $1 ORDER BY id",
};

function seeds(spec) {
  return spec.split(",").flatMap((part) => {
    const [a, b] = part.split("-").map(Number);
    return b ? Array.from({ length: b - a + 1 }, (_, i) => a + i) : [a];
  });
}

/** mulberry32: a small seeded generator, so a schedule replays from its seed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  const srv = createServer().listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

// Every child process started here is killed when this one ends, however it ends.
const children = new Set();
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => process.exit(130));

/** A child process, resolved once `ready` appears in its output; its output kept. */
async function start(cmd, args, env, ready) {
  const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  child.output = "";
  let resolve, reject;
  const up = new Promise((a, b) => ((resolve = a), (reject = b)));
  const read = (d) => {
    child.output += d;
    const m = child.output.match(ready);
    if (m) resolve(m);
  };
  child.stdout.on("data", read);
  child.stderr.on("data", read);
  child.once("exit", (code) => reject(new Error(`${cmd} exited (${code}):\n${child.output.slice(-2000)}`)));
  const timer = setTimeout(() => reject(new Error(`${cmd} did not start:\n${child.output.slice(-2000)}`)), 30000);
  const m = await up;
  clearTimeout(timer);
  return { child, m };
}

function stop(child) {
  if (child.exitCode != null || child.signalCode != null) return Promise.resolve();
  child.kill("SIGKILL");
  return once(child, "exit");
}

/** One app: a clients/web client and the lists it shows, refetched as React Query would. */
function app(ctx, user, token, project) {
  const queries = new Map(Object.keys(RESOURCES).map((r) => [r, { key: [r, project], rows: null, fetching: false, again: false }]));
  const refetch = async (q) => {
    if (q.fetching) return void (q.again = true);
    q.fetching = true;
    try {
      do {
        q.again = false;
        q.rows = JSON.stringify((await ctx.pool.query(RESOURCES[q.key[0]], [project])).rows);
      } while (q.again);
    } finally {
      q.fetching = false;
    }
  };
  const prefix = (key, of) => of.every((k, i) => JSON.stringify(k) === JSON.stringify(key[i]));
  const queryClient = {
    invalidateQueries({ queryKey, predicate } = {}) {
      for (const q of queries.values())
        if (queryKey ? prefix(q.key, queryKey) : predicate ? predicate({ queryKey: q.key }) : true) refetch(q);
      return Promise.resolve();
    },
  };
  const options = { url: ctx.url, getToken: async () => token, WebSocket, window: null, document: null };
  if (RECHECK != null && RECHECK !== "") options.recheckMs = Number(RECHECK);
  const rt = createRealtime(options);
  const seen = new Set();
  const self = { user, project, queries, rt, seen, removedAt: null };
  rt.onEvent((e, p) => {
    // Data written after the removal committed, arriving later than 1 s after it.
    const written = Date.parse((e.data && e.data.timestamp) || e.timestamp || "");
    if (self.removedAt != null && written > self.removedAt && Date.now() - self.removedAt > 1000)
      ctx.leaks.push(`user ${user} got ${e.type} written ${written - self.removedAt} ms after its removal from ${project}, ${Date.now() - self.removedAt} ms after it`);
    if (p !== project || (e.project_id != null && e.project_id !== project && e.project_id !== "*"))
      ctx.problems.push(`user ${user} of ${project} got an event of ${e.project_id}`);
    if (e.event_id && seen.has(e.event_id)) ctx.problems.push(`user ${user} got event ${e.event_id} twice`);
    if (e.event_id) seen.add(e.event_id);
  });
  rt.onRevoked((p, reason) => (self.revoked = reason));
  bindQueryClient(rt, queryClient);
  const subscribed = new Promise((resolve) => rt.onSubscribed((p) => p === project && resolve()));
  rt.subscribe(project, () => {});
  // The page's first load, as an app fetches at mount.
  for (const q of queries.values()) refetch(q);
  self.subscribed = subscribed;
  return self;
}

async function writeOne(ctx, r, project, known) {
  const p = project;
  const ids = known.get(p);
  const pick = () => ids[Math.floor(r() * ids.length)];
  const x = r();
  if (x < 0.3 || ids.length == 0) {
    const { rows } = await ctx.pool.query("INSERT INTO tasks (project_id, title) VALUES ($1, $2) RETURNING id", [p, `t${Math.floor(r() * 1e6)}`]);
    ids.push(rows[0].id);
  } else if (x < 0.5) {
    await ctx.pool.query("UPDATE tasks SET status = $2 WHERE id = $1", [pick(), ["todo", "doing", "done"][Math.floor(r() * 3)]]);
  } else if (x < 0.6) {
    const id = pick();
    ids.splice(ids.indexOf(id), 1);
    await ctx.pool.query("DELETE FROM tasks WHERE id = $1", [id]);
  } else if (x < 0.75) {
    await ctx.pool.query("INSERT INTO messages (project_id, content) VALUES ($1, $2)", [p, `m${Math.floor(r() * 1e6)}`]);
  } else if (x < 0.85) {
    // a bulk statement: its rows reach the relay together and coalesce into one event with ids
    await ctx.pool.query("UPDATE tasks SET title = title || '+' WHERE project_id = $1", [p]);
  } else {
    await ctx.pool.query("INSERT INTO sprints (project_id, name) VALUES ($1, $2)", [p, `s${Math.floor(r() * 1e6)}`]);
  }
}

async function snapshot(ctx, project) {
  const out = {};
  for (const [r, sql] of Object.entries(RESOURCES)) out[r] = JSON.stringify((await ctx.pool.query(sql, [project])).rows);
  return out;
}

async function schedule(seed, pool) {
  const r = rng(seed);
  const faults = FAULTS === "all";
  const proxyArgs = ["tests/faults/dynamodb.py", "--upstream", process.env.AWS_ENDPOINT_URL_DYNAMODB, "--seed", String(seed), "--verbose"];
  if (faults) proxyArgs.push("--gsi-lag-ms", String(LAG_MS), "--throttle-rate", "0.02", "--error-rate", "0.01", "--conflict-rate", "0.02");
  const proxy = await start("python3", proxyArgs, {}, /listening on (\S+)/);
  const port = await freePort();
  const devArgs = ["dev", "--addr", `127.0.0.1:${port}`, "--store", "dynamodb", "--fault-seed", String(seed)];
  if (faults)
    devArgs.push(
      "--invoke-duplicate-rate", "0.1", "--invoke-delay-ms", "300", "--invoke-error-rate", "0.05",
      "--invoke-retry-ms", "300", "--fault-429", "0.02", "--fault-500", "0.01",
      "--disconnect-loss-rate", "0.1",
    );
  const dev = await start(BIN, devArgs, {
    AWS_ENDPOINT_URL_DYNAMODB: `http://${proxy.m[1]}`,
    CONNECTIONS_TABLE: `chaos-${seed}-${randomUUID()}`,
    EVENTS_TABLE: `chaos-events-${seed}-${randomUUID()}`,
    RUST_LOG: "warn",
  }, /DevHive Realtime dev server/);
  const ctx = { pool, url: `ws://127.0.0.1:${port}/`, problems: [], leaks: [] };
  const token = (user) => execFileSync(BIN, ["token", "--user", user], { cwd: REPO, encoding: "utf8" }).trim();
  const apps = [];
  const known = new Map();
  const projects = [];
  try {
    for (let i = 0; i < PROJECTS; i++) {
      const { rows } = await pool.query("INSERT INTO projects (name) VALUES ($1) RETURNING id", [`chaos ${seed}.${i}`]);
      const project = rows[0].id;
      projects.push(project);
      known.set(project, []);
      for (let c = 0; c < CLIENTS; c++) {
        const user = randomUUID();
        await pool.query("INSERT INTO users (id, email) VALUES ($1, $2)", [user, `${user}@chaos.test`]);
        await pool.query("INSERT INTO project_members (project_id, user_id) VALUES ($1, $2)", [project, user]);
        apps.push(app(ctx, user, token(user), project));
      }
    }
    const reload = (i) => {
      const old = apps[i];
      if (old.removedAt != null) return;
      old.rt.close();
      apps[i] = app(ctx, old.user, token(old.user), old.project);
    };
    const gap = DURATION_MS / WRITES;
    let removed = 0;
    // A member of a project with another member left, removed from it: it must stop receiving.
    const remove = async () => {
      const members = (p) => apps.filter((a) => a.project === p && a.removedAt == null);
      const candidates = apps.filter((a) => a.removedAt == null && members(a.project).length > 1);
      const a = candidates[Math.floor(r() * candidates.length)];
      if (!a) return;
      await pool.query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2", [a.project, a.user]);
      a.removedAt = Date.now();
    };
    for (let w = 0; w < WRITES; w++) {
      if (REMOVALS && w % Math.floor(WRITES / (REMOVALS + 1)) == 0 && w > 0 && removed < REMOVALS) (await remove(), removed++);
      if (r() < 0.03) reload(Math.floor(r() * apps.length));
      await writeOne(ctx, r, projects[Math.floor(r() * projects.length)], known);
      await sleep(gap * (0.5 + r()));
    }
    // Each project's last write the moment one of its clients has reloaded and subscribed: the
    // trailing event a lagging index hides from the new subscription.
    const firsts = projects.map((p) => apps.findIndex((a) => a.project === p && a.removedAt == null));
    firsts.forEach(reload);
    await Promise.all(firsts.map((i) => Promise.race([apps[i].subscribed, sleep(5000)])));
    // ...and has fetched what that reply made it refetch: it now shows the database's state.
    const idle = async (a) => {
      for (let t = 0; t < 100 && [...a.queries.values()].some((q) => q.fetching); t++) await sleep(10);
    };
    await Promise.all(firsts.map((i) => idle(apps[i])));
    for (const p of projects) await writeOne(ctx, r, p, known);
    const stopped = Date.now();

    const wants = new Map();
    for (const p of projects) wants.set(p, await snapshot(ctx, p));
    const times = [];
    let diverged = [];
    for (;;) {
      // A removed member's app is no longer told anything: it is not compared.
      const behind = apps.filter((a) => a.removedAt == null && [...a.queries.values()].some((q) => q.fetching || q.rows !== wants.get(a.project)[q.key[0]]));
      for (const a of apps) if (!behind.includes(a) && !a.at) a.at = Date.now() - stopped;
      if (!behind.length) break;
      if (Date.now() - stopped > SETTLE_MS) {
        diverged = behind;
        break;
      }
      await sleep(50);
    }
    for (const a of apps) if (a.at != null) times.push(a.at);
    for (const a of apps)
      if (a.removedAt != null && !a.revoked) ctx.problems.push(`user ${a.user} removed from ${a.project} was never told (no unsubscribed)`);
    const injected = (proxy.child.output.match(/"fault"/g) || []).length + (dev.child.output.match(/asynchronous invocation failed|dead-lettered/g) || []).length;
    for (const a of diverged) {
      const stale = [...a.queries.values()].filter((q) => q.rows !== wants.get(a.project)[q.key[0]]).map((q) => q.key[0]);
      console.error(`chaos: seed ${seed}: user ${a.user} of project ${a.project} diverged on ${stale.join(", ")} after ${a.seen.size} events`);
    }
    for (const p of [...ctx.problems, ...ctx.leaks]) console.error(`chaos: seed ${seed}: ${p}`);
    return { writes: WRITES + projects.length, clients: apps.length, removed: apps.filter((a) => a.removedAt != null).length,
      leaked: new Set(ctx.leaks.map((l) => l.split(" ")[1])).size, leaks: ctx.leaks.length, faults: injected, diverged: diverged.length, problems: ctx.problems.length, times };
  } finally {
    for (const a of apps) a.rt.close();
    await stop(dev.child);
    await stop(proxy.child);
  }
}

const p99 = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.99) - 1)] / 1000 : 0);
const line = (n, s) =>
  `chaos: ${n} schedules, ${s.writes} writes, ${s.clients} clients, ${s.faults} faults injected: ${s.diverged} diverged, converged p99 ${p99(s.times).toFixed(2)} s; ` +
  `${s.removed} members removed, ${s.leaked} received ${s.leaks} events written after their removal, later than 1 s after it`;

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 8 });
const total = { writes: 0, clients: 0, faults: 0, diverged: 0, problems: 0, removed: 0, leaked: 0, leaks: 0, times: [] };
let failed = 0;
for (const seed of SEEDS) {
  const s = await schedule(seed, pool);
  console.log(`${line(1, s)} (seed ${seed})`);
  for (const k of ["writes", "clients", "faults", "diverged", "problems", "removed", "leaked", "leaks"]) total[k] += s[k];
  total.times.push(...s.times);
  if (s.diverged || s.problems || s.leaks) failed++;
}
await pool.end();
console.log(line(SEEDS.length, total));
console.log(`chaos: ${SEEDS.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
