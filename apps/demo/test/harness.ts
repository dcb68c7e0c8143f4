import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

/*
 * Shared by the demo's e2e tests (playground and digits): the site is built once with Vite's JS API into
 * node_modules/.cache/sbm-demo-site, served by a small static server that sends the COOP/COEP headers the built site
 * needs for wasm threads, and driven in Debian's chromium through playwright-core (no browser download), as
 * packages/backend-browser/test/chromium.test.ts does.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
/** The reason string of describe.skipIf when chromium is missing. */
export const NO_CHROMIUM = `needs ${CHROMIUM} (bash tools/test-harness/scripts/install-chromium.sh)`;

const here = dirname(fileURLToPath(import.meta.url));
export const demoRoot = join(here, '..');
const repoRoot = join(demoRoot, '..', '..');
export const siteDir = join(repoRoot, 'node_modules', '.cache', 'sbm-demo-site');
export const artifactsDir = join(demoRoot, 'test-artifacts');
const lockDir = `${siteDir}.lock`;
const stampFile = join(siteDir, '.built-at');

const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** No GPU: WebGPU offers no adapter (so asking for it fails) and WebGL runs on SwiftShader through ANGLE. */
export const NO_GPU_FLAGS = [...BASE_FLAGS, '--disable-gpu', '--use-angle=swiftshader'];

/** Newest modification time (ms) of the files the site is built from. */
function newestSource(): number {
  let newest = 0;
  const walk = (p: string) => {
    const s = statSync(p);
    if (s.isDirectory()) {
      for (const f of readdirSync(p)) if (f !== 'node_modules' && f !== 'dist' && f !== 'test') walk(join(p, f));
    } else newest = Math.max(newest, s.mtimeMs);
  };
  for (const p of ['src', 'index.html', 'vite.config.ts', 'package.json', 'public']) {
    const full = join(demoRoot, p);
    if (existsSync(full)) walk(full);
  }
  for (const pkg of readdirSync(join(repoRoot, 'packages'))) {
    const src = join(repoRoot, 'packages', pkg, 'src');
    if (existsSync(src)) walk(src);
  }
  return newest;
}

function fresh(): boolean {
  if (!existsSync(stampFile)) return false;
  return Number(readFileSync(stampFile, 'utf8')) >= newestSource();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Builds the site unless the cached build is newer than every source. Two vitest workers may ask at once: the first
 * to create the lock directory (mkdir is atomic) builds, the other waits for the lock to go and then uses that build.
 * The build goes to a temporary folder renamed into place, so a reader never sees half a site. A lock older than
 * five minutes is a crashed builder's and is taken over.
 */
export async function buildSite(): Promise<{ dir: string; built: boolean; ms: number }> {
  const t0 = Date.now();
  mkdirSync(dirname(siteDir), { recursive: true });
  for (;;) {
    if (fresh()) return { dir: siteDir, built: false, ms: Date.now() - t0 };
    try {
      mkdirSync(lockDir);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(lockDir).mtimeMs > 5 * 60_000) rmSync(lockDir, { recursive: true, force: true });
      } catch {
        // removed meanwhile by its builder
      }
      await sleep(250);
    }
  }
  try {
    if (fresh()) return { dir: siteDir, built: false, ms: Date.now() - t0 };
    const startedAt = Date.now();
    const tmp = `${siteDir}.tmp-${process.pid}`;
    const { build } = await import('vite');
    await build({
      configFile: join(demoRoot, 'vite.config.ts'),
      root: demoRoot,
      logLevel: 'warn',
      // bundlerTimings: rolldown's "slowest plugins" report, noise in test output.
      build: { outDir: tmp, emptyOutDir: true, rolldownOptions: { checks: { bundlerTimings: false } } },
    });
    // The stamp is the build's start: a source saved during the build makes the next call rebuild.
    writeFileSync(join(tmp, '.built-at'), String(startedAt));
    rmSync(siteDir, { recursive: true, force: true });
    renameSync(tmp, siteDir);
    return { dir: siteDir, built: true, ms: Date.now() - t0 };
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};

/** The headers `vite preview` sends (apps/demo/vite.config.ts): cross-origin isolation for wasm threads. */
export const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

export interface StaticServer {
  origin: string;
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1 (a free port) with COOP/COEP on every response. */
export async function serveSite(dir: string): Promise<StaticServer> {
  const root = normalize(dir) + sep;
  const server: Server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path.endsWith('/')) path += 'index.html';
    const file = normalize(join(root, path));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, ISOLATION_HEADERS).end();
      return;
    }
    res.writeHead(200, {
      ...ISOLATION_HEADERS,
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return { origin, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export async function launchChromium(args: string[] = NO_GPU_FLAGS): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

export interface DemoPage {
  page: Page;
  /** Console errors and uncaught page errors since the page opened. */
  errors: string[];
  close(): Promise<void>;
}

/** Opens the demo at `origin` (query e.g. '?backend=wasm') and waits until window.sbmDemo.ready. */
export async function openDemo(browser: Browser, origin: string, query = '', timeout = 60_000): Promise<DemoPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${origin}/index.html${query}`);
  await page.waitForFunction(() => window.sbmDemo?.ready === true, null, { timeout });
  return { page, errors, close: () => page.close() };
}

/** Writes a full-page screenshot to apps/demo/test-artifacts/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const file = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
