// Build the static page into dist/: the page, its two bundled ES modules (app.js, the page; worker.js, the models'
// thread), the models exported by `python -m tools.export_web` (models/), and onnxruntime-web's WASM files copied
// from the npm package, so that the page asks no other origin for anything.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, rmSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const models = join(here, 'models');
const ortDist = join(here, 'node_modules', 'onnxruntime-web', 'dist');
// ort.wasm.min.mjs (the WASM-only build) loads this glue module and binary at run time, and starts its threads
// from the glue module. The WebGPU builds are not shipped: where measured they were far slower than this
// (`python -m bench.web_webgpu`, docs/web-page.md).
const ORT_FILES = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];
const MODEL_FILES = ['classifier.onnx', 'yunet.onnx', 'web_config.json'];

for (const f of MODEL_FILES) {
  if (!existsSync(join(models, f))) {
    console.error(`missing models/${f}: run \`python -m tools.export_web\` first (make web does)`);
    process.exit(2);
  }
}
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'ort'), { recursive: true });
mkdirSync(join(dist, 'models'), { recursive: true });
await build({
  entryPoints: { app: join(here, 'src', 'main.js'), worker: join(here, 'src', 'worker.js') },
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: false,
  target: ['es2022'],
  conditions: ['onnxruntime-web-use-extern-wasm'],
  outdir: dist,
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) cpSync(join(here, f), join(dist, f));
for (const f of ORT_FILES) cpSync(join(ortDist, f), join(dist, 'ort', f));
for (const f of MODEL_FILES) cpSync(join(models, f), join(dist, 'models', f));
const files = [];
const walk = (d) =>
  readdirSync(d).forEach((n) => {
    const p = join(d, n);
    statSync(p).isDirectory() ? walk(p) : files.push([p.slice(dist.length + 1), statSync(p).size]);
  });
walk(dist);
const total = files.reduce((s, [, n]) => s + n, 0);
console.log(`built ${dist}: ${files.length} files, ${(total / 1e6).toFixed(1)} MB`);
