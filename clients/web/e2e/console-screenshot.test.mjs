// docs/console.png stays current: the screenshot is taken here exactly as screenshot.mjs takes
// it (one shared function), and docs/console.png must carry the fingerprint of the console's
// sources as they are now, so changing the console without retaking its picture fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { REPO } from "./harness.mjs";
import { KEYWORD, consoleFingerprint, consoleSources } from "./console-fingerprint.mjs";
import { RETAKE, VIEWPORT, takeConsoleScreenshot } from "./console-screenshot.mjs";
import { parsePng, textChunks } from "./png-text.mjs";

test("the screenshot is a PNG of the console's width stamped with its sources' fingerprint", async () => {
  const path = `${REPO}target/console.png`;
  const taken = await takeConsoleScreenshot(path);
  const png = await readFile(path);
  const { width, height } = parsePng(png); // throws unless signature, chunks and CRCs are right
  assert.equal(width, VIEWPORT.width);
  assert.ok(height >= VIEWPORT.height, `full page at least the viewport tall, got ${height}`);
  assert.deepEqual({ width, height }, { width: taken.width, height: taken.height });
  const fingerprint = await consoleFingerprint();
  assert.match(fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(textChunks(png)[KEYWORD], fingerprint);
  assert.equal(taken.fingerprint, fingerprint);
});

test("the fingerprint covers the console page and the client it loads", async () => {
  const sources = await consoleSources();
  for (const f of ["console/index.html", "console/console.js", "src/index.ts", "e2e/console-screenshot.mjs"]) {
    assert.ok(sources.includes(f), `${f} is one of the console's sources: ${sources.join(", ")}`);
  }
  assert.ok(!sources.some((f) => f.startsWith("dist/") || f.includes("node_modules/")), sources.join(", "));
  assert.deepEqual(sources, [...sources].sort());
});

test("docs/console.png shows the current console", async () => {
  const png = await readFile(`${REPO}docs/console.png`);
  const { width } = parsePng(png);
  assert.equal(width, VIEWPORT.width, "docs/console.png is not the console's width");
  const stamped = textChunks(png)[KEYWORD];
  const current = await consoleFingerprint();
  assert.ok(
    stamped == current,
    stamped
      ? `docs/console.png shows an older console (sources changed): retake it with \`${RETAKE}\` ` +
          `(stamped ${stamped.slice(0, 12)}, sources now ${current.slice(0, 12)})`
      : `docs/console.png carries no ${KEYWORD} stamp: retake it with \`${RETAKE}\``,
  );
});
