// `npm run bench -- browser-train [--only wasm-threads,wasm-2threads-uncapped,wasm-1thread,webgl,webgpu] [--steps N] [--warmup N]
//   [--gpu-steps N] [--timeout S] [--no-simd]`
// --no-simd: @sbm/wasm-kernels on their JavaScript loops instead of their SIMD module (A/B); each wasm line says
// which ran (`simdKernels`).
// The MNIST tutorial ScoreNet training step (batch 64; the real train(): loss, gradients, clip, Adam, EMA) in
// headless Chromium, so the demo's numbers are known (issue 16, item 4). tools/bench/browser/train-page.ts is
// bundled with esbuild from the workspace sources and served from 127.0.0.1 by a small server here; each
// configuration runs in a fresh browser (Debian's /usr/bin/chromium driven by playwright-core, as
// packages/backend-browser/test/chromium.test.ts does):
//   - wasm-threads: the page served with COOP/COEP (cross-origin isolated, so SharedArrayBuffer and tfjs's threaded
//     wasm build work), wasm threads = navigator.hardwareConcurrency (as @sbm/backend-node uses the CPU count) —
//     but tfjs caps the pool at hardwareConcurrency / 2, so on a 2-core machine this is 1 thread (`threads`);
//   - wasm-2threads-uncapped: the same with navigator.hardwareConcurrency patched to 4 in the page, so 2 threads
//     run (what the page would get if @sbm/backend-browser lifted the cap as @sbm/backend-node does);
//   - wasm-1thread: the same page without those headers (what a site that does not send them gets: one thread);
//   - webgl: --disable-gpu, so WebGL runs on SwiftShader (software; no GPU on this machine);
//   - webgpu: --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader (WebGPU on SwiftShader's Vulkan).
// msPerStep is the median of the measured steps after the warm-up steps (min and max beside it). Software GPU
// backends are slow: they get --gpu-steps steps (default 3, after 1 warm-up) and a time limit (--timeout, default
// 300 s per configuration); a configuration that runs past it reports the steps it finished and `timedOut: true`.
// Where Chromium is missing the suite prints one `skipped` line.
import { createServer } from 'node:http';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { URLSearchParams, fileURLToPath } from 'node:url';
import { median, parseArgs, round } from '../lib/timing.mjs';

const CHROMIUM = '/usr/bin/chromium';
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const outDir = join(root, 'node_modules', '.cache', 'sbm-bench-browser-train');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

// The flags of packages/backend-browser/test/chromium.test.ts.
const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const NO_GPU = [...BASE_FLAGS, '--disable-gpu'];
const SWIFTSHADER_WEBGPU = [
  ...BASE_FLAGS,
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--use-angle=swiftshader',
];

const CONFIGS = {
  'wasm-threads': { backend: 'wasm', isolated: true, flags: NO_GPU, gpu: false, threads: 'auto' },
  // Not what a page gets today: navigator.hardwareConcurrency patched to 2 × 2 so tfjs's cap (cores / 2) allows 2
  // threads — what @sbm/backend-browser would get by doing what @sbm/backend-node does (see train-page.ts).
  'wasm-2threads-uncapped': { backend: 'wasm', isolated: true, flags: NO_GPU, gpu: false, threads: '2', hwc: '4' },
  'wasm-1thread': { backend: 'wasm', isolated: false, flags: NO_GPU, gpu: false },
  webgl: { backend: 'webgl', isolated: true, flags: NO_GPU, gpu: true },
  webgpu: { backend: 'webgpu', isolated: true, flags: SWIFTSHADER_WEBGPU, gpu: true },
};

async function bundlePage() {
  const { build } = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(root, 'tools', 'bench', 'browser', 'train-page.ts')],
    outfile: join(outDir, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'error',
    plugins: [
      {
        name: 'sbm-sources',
        setup(b) {
          b.onResolve({ filter: /^@sbm\/[^/]+$/ }, (a) => ({
            path: join(root, 'packages', a.path.slice(5), 'src', 'index.ts'),
          }));
        },
      },
    ],
  });
  writeFileSync(
    join(outDir, 'index.html'),
    '<!doctype html><meta charset="utf-8"><script type="module" src="main.js"></script>',
  );
  // tfjs-backend-wasm fetches its .wasm files from the page's directory (wasmPaths: './').
  const wasmDist = join(
    dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')),
    'dist',
  );
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'])
    copyFileSync(join(wasmDist, f), join(outDir, f));
}

/** /iso/… is served cross-origin isolated (COOP + COEP), /plain/… without those headers. */
function serve() {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/(iso|plain)(\/.*)$/.exec(url.pathname);
    const path = m ? join(outDir, m[2]) : '';
    if (!m || !path.startsWith(outDir) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    const headers = { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' };
    if (m[1] === 'iso') {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    res.writeHead(200, headers);
    res.end(readFileSync(path));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${server.address().port}` })),
  );
}

async function runConfig(name, cfg, origin, { steps, warmup, timeoutS, noSimd }, log) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: cfg.flags });
  const t0 = performance.now();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const q = new URLSearchParams({ backend: cfg.backend, steps: String(steps), warmup: String(warmup) });
    if (cfg.threads) q.set('threads', cfg.threads);
    if (cfg.hwc) q.set('hwc', cfg.hwc);
    if (noSimd) q.set('simd', '0');
    await page.goto(`${origin}/${cfg.isolated ? 'iso' : 'plain'}/index.html?${q}`);
    let timedOut = false;
    try {
      await page.waitForFunction(() => window.__sbmResult !== undefined, null, {
        timeout: timeoutS * 1000,
        polling: 1000,
      });
    } catch (e) {
      if (!/Timeout/i.test(String(e?.message))) throw e;
      timedOut = true;
    }
    const r = timedOut
      ? { timedOut: true, ...(await page.evaluate(() => window.__sbmProgress ?? {})) }
      : await page.evaluate(() => window.__sbmResult);
    if (errors.length) r.pageErrors = errors.slice(0, 3);
    r.wallS = round((performance.now() - t0) / 1000, 1);
    log(`${name}: ${r.error ?? (timedOut ? `timed out after ${timeoutS} s` : 'done')} (${r.wallS} s)`);
    return r;
  } finally {
    await browser.close();
  }
}

export async function run({ args, emit, log }) {
  const opts = parseArgs(args);
  const names = typeof opts.only === 'string' ? opts.only.split(',') : Object.keys(CONFIGS);
  for (const n of names)
    if (!CONFIGS[n]) throw new Error(`--only: unknown configuration '${n}' (${Object.keys(CONFIGS)})`);
  if (!existsSync(CHROMIUM)) {
    emit({ skipped: `no ${CHROMIUM} (bash tools/test-harness/scripts/install-chromium.sh installs Debian's)` });
    return;
  }
  const steps = Number(opts.steps ?? 5);
  const warmup = Number(opts.warmup ?? 2);
  const gpuSteps = Number(opts['gpu-steps'] ?? 3);
  const timeoutS = Number(opts.timeout ?? 300);
  log('bundling the page');
  await bundlePage();
  const { server, origin } = await serve();
  try {
    for (const name of names) {
      const cfg = CONFIGS[name];
      const sz = cfg.gpu ? { steps: gpuSteps, warmup: 1 } : { steps, warmup };
      log(`${name}: ${sz.warmup} warm-up + ${sz.steps} measured steps (limit ${timeoutS} s)`);
      const r = await runConfig(name, cfg, origin, { ...sz, timeoutS, noSimd: Boolean(opts['no-simd']) }, log);
      const times = r.times ?? [];
      const ms = times.length ? median(times) : null;
      emit({
        config: name,
        model: 'scorenet',
        batch: 64,
        backend: r.backend ?? cfg.backend,
        tfBackend: r.tfBackend ?? null,
        threads: r.threads ?? null,
        threadsAsked: r.threadsAsked ?? null,
        startedBefore: r.startedBefore ?? null,
        hardwareConcurrency: r.hardwareConcurrency ?? null,
        ...(r.hardwareConcurrencyPatched ? { hardwareConcurrencyPatched: r.hardwareConcurrencyPatched } : {}),
        ...(r.wasmMultithread !== undefined
          ? {
              wasmSimd: r.wasmSimd,
              wasmMultithread: r.wasmMultithread,
              wasmBuild: r.wasmBuild,
              simdKernels: r.simdKernels ?? null,
              simdThreads: r.simdThreads ?? null,
            }
          : {}),
        crossOriginIsolated: r.crossOriginIsolated ?? null,
        msPerStep: round(ms, 1),
        minMs: times.length ? round(Math.min(...times), 1) : null,
        maxMs: times.length ? round(Math.max(...times), 1) : null,
        imagesPerSec: ms ? round(64_000 / ms, 2) : null,
        stepsMeasured: times.length,
        warmup: sz.warmup,
        tensorsLeft: r.tensorsLeft ?? null,
        reason: r.reason ?? null,
        ...(r.error ? { error: r.error } : {}),
        ...(r.timedOut ? { timedOut: true, stage: r.stage } : {}),
        ...(r.pageErrors ? { pageErrors: r.pageErrors } : {}),
        wallS: r.wallS,
        chromium: r.userAgent?.match(/Chrome\/[\d.]+/)?.[0] ?? null,
      });
    }
  } finally {
    await new Promise((resolve) => server.close(() => resolve()));
  }
}
