// Retakes docs/console.png (the dev console at GET / with a few events, stamped with the
// fingerprint of its sources). console-screenshot.test.mjs fails once the console's sources no
// longer match that stamp; then run, from the repository root:
//   npm --prefix clients/web run build && node clients/web/e2e/screenshot.mjs
import { REPO } from "./harness.mjs";
import { takeConsoleScreenshot } from "./console-screenshot.mjs";

const path = `${REPO}docs/console.png`;
const { fingerprint, width, height } = await takeConsoleScreenshot(path);
console.log(`wrote ${path} (${width}x${height}, sources ${fingerprint.slice(0, 12)})`);
