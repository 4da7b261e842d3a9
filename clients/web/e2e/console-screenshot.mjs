// The one way the console's screenshot is taken, shared by screenshot.mjs (which writes
// docs/console.png) and console-screenshot.test.mjs (which takes it into target/ and checks that
// docs/console.png is current): the dev console at GET / with a fixed user and project, a fixed
// viewport and a few events, stamped with the fingerprint of the sources it shows.
import { mkdir, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { startDevServer, broadcast, launchBrowser, WEB } from "./harness.mjs";
import { KEYWORD, consoleFingerprint, consoleSources } from "./console-fingerprint.mjs";
import { parsePng, withTextChunk } from "./png-text.mjs";

export const USER = "5f0c2a9e-7d41-4c8b-9a36-2e1f0b7c4d58";
export const PROJECT = "c3a1e6d2-84b7-4f19-a0d5-6b29e8f7c104";
export const VIEWPORT = { width: 1100, height: 600 };
export const RETAKE = "npm --prefix clients/web run build && node clients/web/e2e/screenshot.mjs";

// The picture shows dist/index.js but the fingerprint is of src/: refuse a build older than its
// sources, or the stamp would claim a client the picture does not show.
async function assertBuilt() {
  const built = await stat(`${WEB}dist/index.js`).catch(() => null);
  if (!built) throw new Error("clients/web/dist/index.js is missing: run `npm --prefix clients/web run build`");
  for (const f of (await consoleSources()).filter((f) => f.startsWith("src/"))) {
    if ((await stat(WEB + f)).mtimeMs > built.mtimeMs) {
      throw new Error(`clients/web/${f} is newer than dist/index.js: run \`npm --prefix clients/web run build\``);
    }
  }
}

/**
 * Takes the console's screenshot into `path` (a PNG, full page, VIEWPORT wide) with the
 * fingerprint of its sources in a tEXt chunk KEYWORD; starts and stops its own dev server and
 * browser. Resolves to { fingerprint, width, height }.
 */
export async function takeConsoleScreenshot(path) {
  await assertBuilt();
  const fingerprint = await consoleFingerprint();
  const server = await startDevServer();
  let browser;
  try {
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: VIEWPORT, deviceScaleFactor: 1 });
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
    const png = withTextChunk(await page.screenshot({ fullPage: true }), KEYWORD, fingerprint);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, png);
    const { width, height } = parsePng(png);
    return { fingerprint, width, height };
  } finally {
    await browser?.close();
    await server.stop();
  }
}
