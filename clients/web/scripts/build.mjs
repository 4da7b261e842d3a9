// npm run build: dist/index.js, dist/react-query.js (ESM bundles, no runtime dependencies),
// their .d.ts (tsc), and the size gate: the core minified + gzip must stay <= 4096 bytes.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const LIMIT = 4096;
process.chdir(root);
rmSync("dist", { recursive: true, force: true });

const common = { bundle: true, format: "esm", target: "es2020", platform: "browser", logLevel: "warning" };
await build({ ...common, entryPoints: ["src/index.ts", "src/react-query.ts"], outdir: "dist" });

// Declarations (and the type check): tsc from devDependencies.
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "."], { stdio: "inherit" });

// The React Query entry must not import anything at runtime (not react, not the core).
const rq = readFileSync("dist/react-query.js", "utf8");
if (/^\s*import\s|\bimport\s*\(|\brequire\s*\(/m.test(rq)) {
  console.error("dist/react-query.js imports something at runtime");
  process.exit(1);
}

const min = await build({ ...common, entryPoints: ["src/index.ts"], minify: true, write: false });
const bytes = min.outputFiles[0].contents;
const gz = gzipSync(bytes).length;
console.log(`core: ${bytes.length} bytes minified, ${gz} bytes minified+gzip (limit ${LIMIT})`);
if (gz > LIMIT) {
  console.error(`core is ${gz} bytes minified+gzip, over the ${LIMIT}-byte budget`);
  process.exit(1);
}
