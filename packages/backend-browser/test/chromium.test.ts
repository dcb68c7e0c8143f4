import { createServer, type Server } from 'node:http';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/*
 * @sbm/backend-browser in a real browser: Debian's chromium (tools/test-harness/scripts/install-chromium.sh installs it)
 * driven by playwright-core, which downloads no browser. The page is bundled with esbuild for the browser platform,
 * so the bundle step also proves the package imports no Node built-ins.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const outDir = join(root, 'node_modules', '.cache', 'sbm-backend-browser-test');

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

let server: Server | undefined;
let origin = '';

async function bundlePage(): Promise<void> {
  const { build } = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, 'page', 'main.ts')],
    outfile: join(outDir, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
    alias: {
      '@sbm/backend-browser': join(root, 'packages/backend-browser/src/index.ts'),
      '@sbm/core': join(root, 'packages/core/src/index.ts'),
      '@sbm/wasm-kernels': join(root, 'packages/wasm-kernels/src/index.ts'),
    },
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
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
    copyFileSync(join(wasmDist, f), join(outDir, f));
  }
}

const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** No GPU at all: WebGPU has no adapter, WebGL runs on SwiftShader. */
const NO_GPU = [...BASE_FLAGS, '--disable-gpu'];
/** WebGPU on SwiftShader's Vulkan (what CI without a GPU can offer). */
const SWIFTSHADER_WEBGPU = [
  ...BASE_FLAGS,
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--use-angle=swiftshader',
];

async function openPage(query: string, args: string[]): Promise<Record<string, Record<string, unknown>>> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/index.html?${query}`);
    await page.waitForFunction(() => (window as unknown as { __sbmResult?: unknown }).__sbmResult !== undefined, null, {
      timeout: 90_000,
    });
    expect(errors).toEqual([]);
    return (await page.evaluate(() => (window as unknown as { __sbmResult: unknown }).__sbmResult)) as Record<
      string,
      Record<string, unknown>
    >;
  } finally {
    await browser.close();
  }
}

describe.skipIf(!hasChromium)('backend-browser in headless Chromium (needs /usr/bin/chromium)', () => {
  beforeAll(async () => {
    await bundlePage();
    server = createServer((req, res) => {
      const path = join(outDir, new URL(req.url ?? '/', 'http://x').pathname);
      if (!path.startsWith(outDir) || !existsSync(path)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
      res.end(readFileSync(path));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('picks a backend automatically, computes, and round-trips a model and a side file through IndexedDB', async () => {
    const r = await openPage('backends=auto,wasm,cpu,webgl', NO_GPU);
    // Without a GPU (--disable-gpu) WebGPU offers no hardware adapter and WebGL runs on SwiftShader: both are
    // skipped in automatic selection, so wasm must win, with sbm's training kernels.
    expect(r.auto.error).toBeUndefined();
    expect(r.auto.backend).toBe('wasm');
    expect(r.auto.tfBackend).toBe('wasm');
    expect(String(r.auto.reason)).toMatch(
      /^sbm: backend wasm \(1 thread.*\(skipped webgpu: .*; webgl: only a software WebGL renderer .*\)$/,
    );
    for (const name of ['auto', 'wasm', 'cpu', 'webgl']) {
      expect(r[name].error, name).toBeUndefined();
      expect(r[name].matmul, name).toEqual([19, 22, 43, 50]);
      expect(r[name].leaked, name).toBe(0);
    }
    expect(r.cpu.backend).toBe('cpu');
    // Asked for by name, WebGL is used even on SwiftShader.
    expect(r.webgl.backend).toBe('webgl');
    expect(String(r.webgl.reason)).toContain("asked for by option backend: 'webgl'");
    for (const name of ['auto', 'wasm']) {
      expect(r[name].idbWeightsEqual, name).toBe(true);
      expect(r[name].idbExists, name).toBe(true);
      expect(r[name].sideFile, name).toBe('{"sde":"vp"}');
      expect(r[name].missingCode, name).toBe('FILE_NOT_FOUND');
      expect(r[name].png, name).toEqual([0, 50, 100, 150, 200, 250]);
    }
  });

  it('uses WebGPU on SwiftShader when asked for by name, and skips it in automatic selection', async () => {
    const r = await openPage('backends=webgpu,auto', SWIFTSHADER_WEBGPU);
    expect(r.webgpu.error).toBeUndefined();
    expect(r.webgpu.tfBackend).toBe('webgpu');
    expect(String(r.webgpu.reason)).toContain('software adapter');
    expect(r.webgpu.matmul).toEqual([19, 22, 43, 50]);
    expect(r.webgpu.leaked).toBe(0);
    expect(r.auto.backend).not.toBe('webgpu');
    expect(String(r.auto.reason)).toContain('skipped webgpu: only a software WebGPU adapter');
  });
});
