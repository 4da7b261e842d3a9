// The dev console that the dev server serves at GET /: pick a user, connect and subscribe, send a
// test broadcast from the page, and see it (and one sent from outside) in the log with its seq.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDevServer, mintToken, broadcast, launchBrowser, uuid } from "./harness.mjs";

let server, browser;
before(async () => {
  server = await startDevServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the console at GET /: user, subscribe, broadcast, events with their seq", async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() == "error" && errors.push(m.text()));
  await page.goto(`${server.http}/`);
  await page.waitForSelector("#user:not([value=''])");

  // "random" gives a fresh user id; then pick our own.
  const before = await page.inputValue("#user");
  await page.click("#random-user");
  const random = await page.inputValue("#user");
  assert.match(random, /^[0-9a-f-]{36}$/);
  assert.notEqual(random, before);
  const user = uuid();
  const project = uuid();
  await page.fill("#user", user);
  await page.fill("#project", project);

  await page.click("#connect");
  await page.waitForFunction(() => document.querySelector("#status").textContent == "open", null, { polling: 20 });
  // The server sees this user's connection on the project (the console minted its token).
  const status = await fetch(`${server.http}/api/v1/projects/${project}/ws/status`, {
    headers: { authorization: `Bearer ${await mintToken(uuid())}` },
  }).then((r) => r.json());
  assert.deepEqual([status.project_clients, status.user_ids], [1, [user]]);

  // Subscribing again to the same project keeps the socket: no reconnect, no new status.
  const statusNotes = () => page.locator("#log tr.note", { hasText: "status:" }).count();
  const notesBefore = await statusNotes();
  await page.click("#subscribe");
  await page.locator("#log tr.note", { hasText: `already subscribed to project ${project}` }).waitFor();
  assert.equal(await statusNotes(), notesBefore, "the socket was not closed and reopened");
  assert.equal(await page.textContent("#status"), "open");

  await page.fill("#text", "first from the page");
  await page.click("#send");
  await page.waitForFunction(() => document.querySelector("#result").textContent.includes("delivered"), null, { polling: 20 });
  assert.equal(await page.textContent("#result"), "recipients 1 · delivered 1");
  const row = page.locator('#log tr.event[data-seq="1"]');
  await row.waitFor();
  assert.deepEqual(await row.locator("td").allTextContents().then((t) => t.slice(1)), [
    "message_created",
    "1",
    JSON.stringify({ text: "first from the page" }),
  ]);

  await page.selectOption("#type", "task_updated");
  await page.fill("#text", "second");
  await page.click("#send");
  await page.locator('#log tr.event[data-seq="2"][data-type="task_updated"]').waitFor();

  // An event from outside the page (any HTTP handler's invocation) shows up too, next in seq.
  assert.equal((await broadcast(server, { project_id: project, type: "sprint_updated", data: { id: "s1" } })).delivered, 1);
  await page.locator('#log tr.event[data-seq="3"][data-type="sprint_updated"]').waitFor();
  const seqs = await page.locator("#log tr.event").evaluateAll((rows) => rows.map((r) => r.dataset.seq));
  assert.deepEqual(seqs, ["3", "2", "1"], "newest first, each once");

  // Another project: the next events are that project's, from seq 1.
  const other = uuid();
  await page.fill("#project", other);
  await page.click("#subscribe");
  await page.waitForFunction((p) => document.querySelector("#who").textContent.includes(p), other, { polling: 20 });
  await page.waitForFunction(() => document.querySelector("#status").textContent == "open", null, { polling: 20 });
  await page.fill("#text", "elsewhere");
  await page.click("#send");
  await page.locator('#log tr.event[data-seq="1"]').nth(0).filter({ hasText: "elsewhere" }).waitFor();

  assert.equal(await page.isDisabled("#dm-send"), false, "send direct works while connected");
  await page.click("#disconnect");
  await page.waitForFunction(() => document.querySelector("#status").textContent == "closed", null, { polling: 20 });
  assert.equal(await page.isDisabled("#dm-send"), true, "no send direct without a connection");
  assert.deepEqual(errors, []);
  await page.close();
});
