// Takes docs/console.png: the dev console at GET / with a few events. Not part of the test run:
//   node clients/web/e2e/screenshot.mjs   (after npm --prefix clients/web run build)
import { startDevServer, broadcast, launchBrowser, REPO } from "./harness.mjs";
import { mkdir } from "node:fs/promises";

const USER = "5f0c2a9e-7d41-4c8b-9a36-2e1f0b7c4d58";
const PROJECT = "c3a1e6d2-84b7-4f19-a0d5-6b29e8f7c104";
const server = await startDevServer();
const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 600 }, deviceScaleFactor: 1 });
  await page.goto(`${server.http}/`);
  await page.fill("#user", USER);
  await page.fill("#project", PROJECT);
  await page.click("#connect");
  await page.waitForFunction(() => document.querySelector("#status").textContent == "open");
  const events = [
    { type: "message_created", data: { text: "Standup moved to 10:30", author: "ana" } },
    { type: "task_updated", data: { id: "T-142", status: "in_review" } },
    { resource: "sprint", id: "S-7", action: "UPDATE", timestamp: new Date().toISOString() },
    { type: "member_added", data: { user_id: "0b6a1f3e-2c4d-4e5f-8a9b-7c6d5e4f3a2b", role: "developer" } },
  ];
  for (const [i, e] of events.entries()) {
    await broadcast(server, { project_id: PROJECT, ...e });
    await page.locator(`#log tr.event[data-seq="${i + 1}"]`).waitFor();
  }
  await page.fill("#text", "Hello from the dev console");
  await page.click("#send");
  await page.locator('#log tr.event[data-seq="5"]').waitFor();
  await page.waitForFunction(() => document.querySelector("#result").textContent.includes("delivered"));
  await mkdir(`${REPO}docs`, { recursive: true });
  await page.screenshot({ path: `${REPO}docs/console.png`, fullPage: true });
  console.log(`wrote ${REPO}docs/console.png`);
} finally {
  await browser.close();
  await server.stop();
}
