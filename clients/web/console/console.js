// The dev console: a page the dev server serves at GET /, built on the web client it serves as
// /console/realtime.js (clients/web/dist/index.js). Pick a user (the dev server mints a token
// for it at /console/token), subscribe to a project, watch events arrive with their seq, and
// broadcast test events through the dev server's Lambda Invoke API. The project's online and
// typing users are listed (rt.presence, rt.typing), the chat input tells the others you type,
// and direct messages (rt.onDirect) are logged and can be sent to any user id.
import { createRealtime } from "/console/realtime.js";

const $ = (id) => document.getElementById(id);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_ROWS = 500;
const STORE = "devhive-console";

const randomId = () =>
  crypto.randomUUID
    ? crypto.randomUUID()
    : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
        (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16),
      );

let rt = null; // the client, while connected
let sub = null; // its subscription
let people = []; // "off" functions of the online/typing listeners
let user = null;
let project = null;
let lastTokenError = "";

// ---- the log -------------------------------------------------------------------------------

const time = () => new Date().toISOString().slice(11, 23);

function addRow(cells, attrs = {}) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, v);
  for (const [cls, text] of cells) {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    tr.append(td);
  }
  const log = $("log");
  log.prepend(tr); // newest first
  while (log.rows.length > MAX_ROWS) log.lastElementChild.remove();
  $("empty").hidden = true;
  return tr;
}

function note(text, kind = "note") {
  addRow([["time", time()], ["type", kind], ["seq", ""], ["payload", text]], { class: kind == "reset" ? "note reset" : "note" });
}

function showEvent(ev) {
  const { type, seq, project_id, event_id, timestamp, ...rest } = ev;
  if (type == "direct_message") delete rest.user_id; // the recipient: this user
  // The payload: `data` alone when that is all there is; a cache_invalidate's record once (it
  // carries it both at the top level and in `data`).
  const keys = Object.keys(rest);
  const payload = keys.length == 1 && keys[0] == "data" ? rest.data : type == "cache_invalidate" ? { ...rest, data: undefined } : rest;
  const tr = addRow(
    [
      ["time", time()],
      ["type", type],
      ["seq", seq ?? ""],
      ["payload", JSON.stringify(payload)],
    ],
    { class: type == "direct_message" ? "event direct" : "event", "data-type": type, "data-seq": seq ?? "" },
  );
  tr.title = JSON.stringify(ev, null, 2);
}

// A project subscription's frames. Typing is shown in #typing and direct messages come through
// rt.onDirect (exactly once, in seq order; they also reach every project socket).
function projectFrame(ev) {
  if (ev.type == "presence") note(`presence: user ${ev.user_id} ${ev.state}`, "presence");
  else if (ev.type != "typing" && ev.type != "direct_message") showEvent(ev);
}

// ---- who is online, who is typing ------------------------------------------------------------

function showUsers(id, users) {
  const items = [...users].sort().map((u) => {
    const li = document.createElement("li");
    li.dataset.user = u;
    li.textContent = u == user ? `${u} (you)` : u;
    return li;
  });
  $(id).replaceChildren(...items);
}

// Follows project p's online and typing sets (none: empties both).
function watchPeople(p) {
  people.forEach((off) => off());
  people = [];
  for (const [id, set] of [
    ["online", p && rt.presence(p)],
    ["typing", p && rt.typing(p)],
  ]) {
    showUsers(id, set ? set.users() : []);
    if (set) people.push(set.onChange((users) => showUsers(id, users)));
  }
}

// ---- connection ----------------------------------------------------------------------------

function setStatus(s) {
  const el = $("status");
  el.textContent = s;
  el.className = s;
  $("who").textContent = rt ? `user ${user}${project ? ` · project ${project}` : ""}` : "";
}

async function getToken() {
  const res = await fetch(`/console/token?user_id=${encodeURIComponent(user)}`);
  const body = await res.text();
  if (!res.ok) {
    // Shown once per distinct failure: the client retries with backoff.
    if (body != lastTokenError) note(`no token (${res.status}): ${body}`);
    lastTokenError = body;
    throw new Error(body);
  }
  lastTokenError = "";
  return JSON.parse(body).token;
}

function readId(input) {
  const v = input.value.trim().toLowerCase();
  if (!v) input.value = randomId();
  else if (!UUID.test(v)) {
    input.setCustomValidity("a UUID, e.g. " + randomId());
    input.reportValidity();
    return null;
  }
  input.setCustomValidity("");
  return input.value.trim().toLowerCase();
}

function remember() {
  localStorage.setItem(STORE, JSON.stringify({ user: $("user").value, project: $("project").value }));
}

// Controls that act on the connection, enabled only while there is one.
const CONNECTED_ONLY = ["disconnect", "subscribe", "send", "chat", "dm-send"];

function connect() {
  const u = readId($("user"));
  if (!u) return;
  disconnect();
  user = u;
  const scheme = location.protocol == "https:" ? "wss" : "ws";
  rt = createRealtime({ url: `${scheme}://${location.host}/`, getToken });
  rt.onStatus((s) => {
    setStatus(s);
    note(`status: ${s}`, "status");
  });
  rt.onReset((p) => note(`reset: events of project ${p} may have been lost (an app refetches it now)`, "reset"));
  rt.onRevoked((p, reason) => note(`subscription to ${p} ended: ${reason}`, "revoked"));
  rt.onDirect(showEvent);
  rt.onDirectReset(() => note("reset: direct messages may have been lost (an app refetches them now)", "reset"));
  note(`connecting as user ${user}`);
  for (const id of CONNECTED_ONLY) $(id).disabled = false;
  remember();
  subscribe();
}

// Subscribing again to the project already followed changes nothing (the socket stays, so the
// others see no one leave and come back); another project is subscribed before the old one is
// let go.
function subscribe() {
  if (!rt) return connect();
  const p = readId($("project"));
  if (!p) return;
  if (sub && p == project) return note(`already subscribed to project ${p}`);
  const old = sub;
  project = p;
  sub = rt.subscribe(p, projectFrame);
  if (old) old.unsubscribe();
  watchPeople(p);
  note(`subscribed to project ${p}`);
  setStatus(rt.status);
  remember();
}

function disconnect() {
  if (!rt) return;
  rt.close();
  watchPeople(null);
  rt = sub = project = null;
  setStatus("closed");
  note("disconnected");
  for (const id of CONNECTED_ONLY) $(id).disabled = true;
}

// ---- test broadcasts -----------------------------------------------------------------------

function send() {
  if (project) invoke({ project_id: project, type: $("type").value, data: { text: $("text").value } }, $("result"));
}

// A direct message to a user id (empty: yourself), delivered to every connection of that user.
function sendDirect() {
  if (!$("dm-user").value.trim()) $("dm-user").value = $("user").value;
  const to = readId($("dm-user"));
  if (to) invoke({ user_id: to, type: "direct_message", data: { text: $("dm-text").value } }, $("dm-result"));
}

// The Invoke API wants what the AWS SDKs send: a Signature Version 4 Authorization header (any
// key; the dev server does not verify the signature). A page on another site cannot send one
// without a preflight, which the dev server never grants; this page is the server's own origin.
function signature() {
  const day = new Date().toISOString().slice(0, 10).replaceAll("-", "");
  return `AWS4-HMAC-SHA256 Credential=console/${day}/local/lambda/aws4_request, SignedHeaders=content-type;host, Signature=${"0".repeat(64)}`;
}

// One broadcaster invocation; its counts (or its error) go to `out`.
async function invoke(body, out) {
  out.className = "";
  out.textContent = "sending…";
  try {
    const res = await fetch("/2015-03-31/functions/broadcaster/invocations", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-amz-invocation-type": "RequestResponse",
        authorization: signature(),
      },
      body: JSON.stringify(body),
    });
    const r = await res.json();
    if (!res.ok || r.error) throw new Error(r.error ? `${r.error.field}: ${r.error.message}` : `HTTP ${res.status}`);
    const extra = ["gone", "failed", "expired", "revoked"].filter((k) => r[k]).map((k) => ` · ${k} ${r[k]}`).join("");
    out.textContent = `recipients ${r.recipients} · delivered ${r.delivered}${extra}`;
  } catch (e) {
    out.className = "error";
    out.textContent = `failed: ${e.message}`;
  }
}

// ---- wiring --------------------------------------------------------------------------------

const saved = (() => {
  try {
    return JSON.parse(localStorage.getItem(STORE)) || {};
  } catch {
    return {};
  }
})();
$("user").value = saved.user || randomId();
$("project").value = saved.project || randomId();

const on = (id, ev, fn) =>
  $(id).addEventListener(ev, (e) => {
    e.preventDefault();
    fn();
  });
on("random-user", "click", () => ($("user").value = randomId()));
on("random-project", "click", () => ($("project").value = randomId()));
on("user-form", "submit", connect);
on("project-form", "submit", subscribe);
on("disconnect", "click", disconnect);
on("send-form", "submit", send);
on("chat-form", "submit", () => {}); // nothing is sent: this input only says "typing"
$("chat").addEventListener("input", () => rt && project && rt.typing(project).notify());
on("dm-form", "submit", sendDirect);
$("online").addEventListener("click", (e) => e.target.dataset.user && ($("dm-user").value = e.target.dataset.user));
on("clear", "click", () => {
  $("log").replaceChildren();
  $("empty").hidden = false;
});
