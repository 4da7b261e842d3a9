// What docs/console.png depends on, as one hash: the screenshot stores it (png-text.mjs) and the
// browser tests compare it with the sources as they are now, so a change to the console that
// leaves the screenshot behind fails the tests instead of going unnoticed.
//
// The files that determine the picture (paths relative to clients/web, sorted):
// - console/**: the page the dev server serves at GET / and /console/<name> (index.html with
//   its styles, console.js);
// - src/** except src/react-query.ts: the web client that dist/index.js is built from, which the
//   dev server serves to the page as /console/realtime.js. src/react-query.ts is the React Query
//   entry (dist/react-query.js); the console never loads it. A new module under src/ counts,
//   since index.ts may come to import it;
// - e2e/console-screenshot.mjs: the scene (ids, events, viewport) the picture is taken of.
// Not counted: dist/ and node_modules/ (generated; dist is rebuilt from src), the build's
// settings, the browser and its fonts, and the dev server (its frames are the protocol's, which
// its own tests hold still).
import { createHash } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { WEB } from "./harness.mjs";

/** The tEXt keyword under which a screenshot carries the fingerprint. */
export const KEYWORD = "devhive-console-sources";

const NOT_THE_CONSOLE = new Set(["src/react-query.ts"]);

async function filesUnder(dir) {
  const out = [];
  for (const e of await readdir(WEB + dir, { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...(await filesUnder(rel)));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

/** The files that determine the console's picture, relative to clients/web, sorted. */
export async function consoleSources() {
  const files = [...(await filesUnder("console")), ...(await filesUnder("src")), "e2e/console-screenshot.mjs"];
  return files.filter((f) => !NOT_THE_CONSOLE.has(f)).sort();
}

/**
 * sha256 (hex) over each of consoleSources() in order: its path, NUL, its length in bytes
 * (decimal), NUL, its bytes. Lengths and separators make the encoding unambiguous (moving bytes
 * from one file to the next changes the hash).
 */
export async function consoleFingerprint() {
  const hash = createHash("sha256");
  for (const path of await consoleSources()) {
    const bytes = await readFile(WEB + path);
    hash.update(`${path}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest("hex");
}
