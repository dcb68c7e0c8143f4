import { DemoClient } from './client';
import { mountDigits } from './digits/panel';
import { inkedPixels, type SbmDemoHook } from './hook';
import { mountPlayground } from './playground/panel';
import { BACKEND_SET, type BackendInfo } from './protocol';
import { COLORS } from './playground/view';

const AXIS_RGB = [1, 3, 5].map((i) => parseInt(COLORS.axis.slice(i, i + 2), 16)) as [number, number, number];

/*
 * The page: tabs, the backend switcher and the error banner, the worker and its client, and window.sbmDemo. The
 * panels (src/playground/panel.ts, src/digits/panel.ts) add their controls and fill in the hook's actions.
 */
const $ = <T extends HTMLElement>(sel: string) => document.querySelector<T>(sel)!;

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const client = new DemoClient(worker);
const errorsBox = $('#errors');

const notReady = () => Promise.reject(new Error('sbmDemo: the page is still starting'));
const hook: SbmDemoHook = {
  version: 1,
  ready: false,
  coldStartMs: null,
  backend: '',
  backendReason: '',
  crossOriginIsolated: globalThis.crossOriginIsolated === true,
  training: { step: 0, loss: null, running: false, stepsPerSec: null, steps: 0 },
  lastSamples: null,
  errors: [],
  setBackend: (name) => setBackend(name),
  setData: notReady,
  startTraining: notReady,
  stopTraining: notReady,
  sample: notReady,
  scoreField: notReady,
  trajectories: notReady,
  langevin: notReady,
  density: notReady,
  options: () => ({ sdes: [], samplers: [], toys: [], backends: ['auto', 'webgpu', 'webgl', 'wasm', 'cpu'] }),
  canvases: () => {
    const out: ReturnType<SbmDemoHook['canvases']> = {};
    document.querySelectorAll<HTMLCanvasElement>('canvas[data-name]').forEach((c) => {
      out[c.dataset.name!] = { width: c.width, height: c.height, inked: inkedPixels(c, [AXIS_RGB]) };
    });
    return out;
  },
  digits: {},
};
window.sbmDemo = hook;

/** Shows an error on the page (and records it in sbmDemo.errors); returns the message. */
export function showError(context: string, e: unknown): string {
  const code = (e as { code?: string })?.code;
  const msg = `${context}: ${e instanceof Error ? e.message : String(e)}${code ? ` [${code}]` : ''}`;
  hook.errors.push(msg);
  const p = document.createElement('p');
  p.textContent = msg;
  errorsBox.append(p);
  return msg;
}

function showBackend(b: BackendInfo): void {
  hook.backend = b.backend;
  hook.backendReason = b.reason;
  hook.crossOriginIsolated = b.crossOriginIsolated;
  $('#backend-name').textContent = b.backend;
  $('#backend-reason').textContent = b.reason;
  $<HTMLSelectElement>('#backend-select').value = b.backend;
}

/*
 * ?threads=<n>: wasm's thread count (default: the worker's choice, all cores up to 4). It takes effect where wasm
 * first starts in the worker, so 1 vs 2 threads are compared in two page loads (?backend=wasm&threads=1).
 */
const threadsParam = new URLSearchParams(location.search).get('threads');
const threads = threadsParam === null ? undefined : Number(threadsParam);

async function setBackend(name: string): Promise<BackendInfo> {
  $('#backend-name').textContent = `${name}…`;
  try {
    const b = await client.request<BackendInfo>(BACKEND_SET, { name, threads });
    showBackend(b);
    playground.backendChanged();
    return b;
  } catch (e) {
    showError(`backend ${name}`, e);
    // The worker fell back to a backend that works: show which.
    showBackend(await client.request<BackendInfo>('backend:get'));
    playground.backendChanged();
    throw e;
  }
}

for (const tab of document.querySelectorAll<HTMLButtonElement>('nav [data-tab]')) {
  tab.addEventListener('click', () => {
    for (const t of document.querySelectorAll<HTMLButtonElement>('nav [data-tab]')) {
      t.setAttribute('aria-selected', String(t === tab));
    }
    for (const s of document.querySelectorAll<HTMLElement>('[data-panel]'))
      s.hidden = s.dataset.panel !== tab.dataset.tab;
  });
}
$<HTMLSelectElement>('#backend-select').addEventListener('change', (ev) => {
  void setBackend((ev.target as HTMLSelectElement).value).catch(() => undefined);
});

const playground = mountPlayground($('#tab-playground'), client, hook, showError);
mountDigits($('#tab-digits'), client, hook);

async function boot(): Promise<void> {
  // ?backend=<name> starts on that backend (what a user chooses in the switcher); default automatic.
  const asked = new URLSearchParams(location.search).get('backend') ?? 'auto';
  try {
    await setBackend(asked);
  } catch {
    // shown on screen by setBackend; the worker runs on its fallback
  }
  await playground.start();
  // First interactive frame: the backend is up and the playground drew its data; measured from navigation start.
  requestAnimationFrame(() => {
    performance.mark('sbm:interactive');
    hook.coldStartMs = performance.getEntriesByName('sbm:interactive')[0]?.startTime ?? performance.now();
    hook.ready = true;
    document.body.dataset.ready = 'true';
  });
}

void boot().catch((e) => showError('start', e));
