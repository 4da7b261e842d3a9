// Shared pieces of the browser tests: the real dev server as a child process, dev tokens, the
// Invoke API, headless Chromium through playwright-core, and a page instrumented to record its
// sockets. Every child process started here is killed when the test process ends, however it ends.
import { spawn, execFile } from "node:child_process";
import { before, after } from "node:test";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

export const WEB = fileURLToPath(new URL("..", import.meta.url));
export const REPO = fileURLToPath(new URL("../../..", import.meta.url));
export const BIN = process.env.DEVHIVE_BIN || `${REPO}target/debug/devhive-realtime`;
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const uuid = () => randomUUID();

// The dev server and the token command run with the caller's environment minus what would point
// them elsewhere (a database turns membership checks on, a DynamoDB endpoint changes the store):
// the tests need the memory store, no membership and the default limits. JWT_* stay, so server
// and tokens agree.
const SCRUB = /^(DATABASE_URL|MEMBERSHIP|MAX_CONNECTIONS_PER_USER|CLIENT_MESSAGE_RATE|EVENT_RETENTION_S|CONNECTIONS_TABLE|EVENTS_TABLE|AWS_ENDPOINT_URL.*|DEVHIVE_.*|.*_SECRET_ARN)$/;
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SCRUB.test(k)));
ENV.RUST_LOG ||= "warn";

const children = new Set();
const killAll = () => children.forEach((c) => c.exitCode == null && c.signalCode == null && c.kill("SIGKILL"));
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** A port nothing listens on now (the OS picks it); the dev server can be restarted on it. */
export async function freePort() {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

const canConnect = (port) =>
  new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });

/**
 * Starts `devhive-realtime dev` (memory store) on 127.0.0.1:port and resolves once it listens.
 * `stop()` sends SIGTERM (the server closes every socket with 1001), `kill()` SIGKILL; both
 * resolve when the process has exited.
 */
export async function startDevServer({ port, args = [], timeoutMs = 15000 } = {}) {
  port ??= await freePort();
  const child = spawn(BIN, ["dev", "--addr", `127.0.0.1:${port}`, "--store", "memory", ...args], {
    cwd: REPO,
    env: ENV,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  // Readiness: the banner, which the server prints once it is listening (no polling, no sleep).
  let ready;
  const listening = new Promise((resolve, reject) => (ready = { resolve, reject }));
  const read = (d) => {
    output += d;
    if (output.includes("DevHive Realtime dev server")) ready.resolve();
  };
  child.stdout.on("data", read);
  child.stderr.on("data", read);
  let gone = false;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  exited.then(() => {
    gone = true;
    ready.reject(new Error(`dev server exited before listening:\n${output}`));
  });
  const timer = setTimeout(() => ready.reject(new Error(`no banner from the dev server after ${timeoutMs} ms:\n${output}`)), timeoutMs);
  try {
    await listening;
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  } finally {
    clearTimeout(timer);
  }
  if (!(await canConnect(port))) throw new Error(`dev server printed its banner but ${port} refuses connections`);
  const end = async (signal) => {
    if (!gone) child.kill(signal);
    await exited;
    children.delete(child);
  };
  return {
    port,
    url: `ws://127.0.0.1:${port}/`,
    http: `http://127.0.0.1:${port}`,
    output: () => output,
    stop: () => end("SIGTERM"),
    kill: () => end("SIGKILL"),
  };
}

const run = promisify(execFile);

/** A dev token (HS256, the development secret) for `user`, valid `ttl` seconds. */
export async function mintToken(user, ttl = 3600) {
  const { stdout } = await run(BIN, ["token", "--user", user, "--ttl", String(ttl)], { cwd: REPO, env: ENV });
  return stdout.trim();
}

/** `exp` of a JWT (seconds), read without verification. */
export const jwtExp = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url")).exp;

/**
 * One synchronous broadcaster invocation through the dev server's Lambda Invoke API, with the
 * Signature Version 4 Authorization header it wants (shaped as the AWS SDKs send it, any key:
 * the dev server does not verify the signature).
 */
export async function broadcast(server, body) {
  const day = new Date().toISOString().slice(0, 10).replaceAll("-", "");
  const res = await fetch(`${server.http}/2015-03-31/functions/broadcaster/invocations`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-amz-invocation-type": "RequestResponse",
      authorization: `AWS4-HMAC-SHA256 Credential=test/${day}/local/lambda/aws4_request, SignedHeaders=content-type;host, Signature=${"0".repeat(64)}`,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`invoke answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    // playwright gives every launch a fresh temporary profile (its own --user-data-dir).
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A static server on 127.0.0.1 for the test pages: `/` a blank page, `/dist/*` the built client,
 * and `files` (path → JavaScript source). A real loopback server: Chromium's local network access
 * checks block a WebSocket to 127.0.0.1 from a page that is not itself on a local address.
 */
export async function startStatic(files = {}) {
  const srv = createHttpServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const m = /^\/dist\/([a-z-]+\.js)$/.exec(path);
    const js = (body) => res.writeHead(200, { "content-type": "text/javascript" }).end(body);
    try {
      if (path == "/") res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>e2e</title><body></body>");
      else if (path == "/favicon.ico") res.writeHead(204).end();
      else if (path in files) js(files[path]);
      else if (m) js(await readFile(`${WEB}dist/${m[1]}`));
      else res.writeHead(404).end("not found");
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  return {
    origin: `http://127.0.0.1:${srv.address().port}`,
    close: () => (srv.closeAllConnections(), new Promise((r) => srv.close(r))),
  };
}

/**
 * The set-up every page test shares: registers node:test `before` and `after` hooks and returns
 * `env`, whose `server` (startDevServer with `args`), `browser` (launchBrowser) and `site`
 * (startStatic with `files`) are filled in before the tests run. `files` may be a function
 * (async or not) returning them; it runs first, before anything is started. After the tests,
 * the browser is closed, then `env.server` stopped (a test that replaces the server assigns
 * `env.server`, so the one running then is stopped), then the site closed, whichever of them
 * started and however the tests ended.
 */
export function setUp({ args, files } = {}) {
  const env = { server: undefined, browser: undefined, site: undefined };
  before(async () => {
    const pages = typeof files == "function" ? await files() : files;
    env.server = await startDevServer({ args });
    env.browser = await launchBrowser();
    env.site = await startStatic(pages);
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
    await env.site?.close();
  });
  return env;
}

// Runs in the page before its scripts: wraps WebSocket to record every socket the client makes
// (frames sent and received, open and close), so tests can assert on what happened on the wire.
function instrument() {
  const Native = window.WebSocket;
  const wire = (window.wire = { sockets: [] });
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = { i: wire.sockets.length, created: Date.now(), opened: null, closed: null, code: null, project: null, sent: [], got: [] };
      wire.sockets.push(rec);
      this.addEventListener("open", () => (rec.opened = Date.now()));
      this.addEventListener("close", (e) => {
        rec.closed = Date.now();
        rec.code = e.code;
      });
      this.addEventListener("message", (e) => {
        try {
          rec.got.push(JSON.parse(e.data));
        } catch {
          rec.got.push({ unparsed: String(e.data) });
        }
      });
      this.rec = rec;
    }
    send(data) {
      const f = JSON.parse(data);
      if (f.action == "subscribe") this.rec.project = f.project_id;
      this.rec.sent.push(f);
      super.send(data);
    }
  };
}

/**
 * A page at `origin` (a startStatic server, or the dev server) with the WebSocket recorder and
 * `window.getToken` bound to `getToken` in node.
 */
export async function openPage(browser, origin, { getToken, path = "/" } = {}) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() == "error" && errors.push(m.text()));
  await page.addInitScript(instrument);
  if (getToken) await page.exposeFunction("getToken", getToken);
  await page.goto(origin + path);
  return { page, errors };
}

/**
 * Creates the client in the page as `window.rt` with `options` (url, timings) and records what
 * it reports: `window.log` = { events: {project: [event]}, statuses, resets, revoked, tokenCalls }
 * (tokenCalls: when each connection attempt or refresh began, in page time).
 * Then subscribes to each of `projects`.
 */
export async function startClient(page, options, projects) {
  await page.evaluate(
    async ({ options, projects }) => {
      const { createRealtime } = await import("/dist/index.js");
      const log = (window.log = { events: {}, statuses: [], resets: [], revoked: [], tokenCalls: [] });
      const getToken = () => (log.tokenCalls.push(Date.now()), window.getToken());
      const rt = (window.rt = createRealtime({ ...options, getToken }));
      rt.onStatus((s) => log.statuses.push({ s, at: Date.now() }));
      rt.onReset((p) => log.resets.push({ p, at: Date.now() }));
      rt.onRevoked((p, reason) => log.revoked.push({ p, reason }));
      for (const p of projects) {
        log.events[p] = [];
        rt.subscribe(p, (e) => log.events[p].push(e));
      }
    },
    { options, projects },
  );
}

/** Resolves when every project's current socket has its `subscribed` reply. */
export function waitSubscribed(page, projects, timeout = 10000) {
  return page.waitForFunction(
    (ps) =>
      ps.every((p) =>
        window.wire.sockets.some((s) => s.project == p && s.closed == null && s.got.some((f) => f.type == "subscribed")),
      ),
    projects,
    { timeout, polling: 20 },
  );
}
