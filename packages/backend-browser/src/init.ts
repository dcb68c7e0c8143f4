import {
  SbmError,
  backendReason,
  checkNumber,
  describeValue,
  initRegisteredBackend,
  makeBackend,
  registerBackend,
  startCpuBackend,
  type Backend,
  type BackendCapabilities,
} from '@sbm/core';
import { name as pkgName, version as pkgVersion } from '../package.json';
import { CanvasImageOutput } from './image';
import { defaultLoader, type ModuleLoader } from './load';
import { BrowserCheckpointStorage } from './storage';
import { initWasm, type BrowserWasmOptions } from './wasm';
import { initWebgl } from './webgl';
import { initWebgpu } from './webgpu';

export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackendName = (typeof BROWSER_BACKENDS)[number];
export const BROWSER_PRIORITIES: Record<BrowserBackendName, number> = { webgpu: 40, webgl: 30, wasm: 20, cpu: 10 };

export interface BrowserBackendOptions extends BrowserWasmOptions {
  /** How optional packages are loaded (tests pass fakes). */
  loader?: ModuleLoader;
}

export interface InitBrowserBackendOptions extends BrowserBackendOptions {
  /** Which backend; default automatic: webgpu › webgl (hardware) › wasm › cpu. */
  backend?: BrowserBackendName | 'auto';
  /** Receives the one line saying which backend was chosen and why. Default console.info; false: silent. */
  log?: ((line: string) => void) | false;
}

const storage = new BrowserCheckpointStorage();
const images = new CanvasImageOutput();
const make = (
  name: BrowserBackendName,
  reason: string,
  capabilities: Partial<BackendCapabilities> & Pick<BackendCapabilities, 'training'>,
): Backend => makeBackend({ name, kind: 'browser', reason, capabilities, storage, images });

// Re-registered by every initBackend call (with that call's options), so each replaces the last.
const REGISTER = { override: true, source: `${pkgName}@${pkgVersion}` };

/** Registers sbm's browser backends with @sbm/core (then `useBackend(name)` works too). */
export function registerBrowserBackends(opts: BrowserBackendOptions = {}): void {
  // tfjs-backend-wasm pre-creates 8 pthread workers and caps XNNPACK's pool there (backend.cc).
  if (opts.wasmThreads !== undefined) checkNumber(opts.wasmThreads, 'wasmThreads', { integer: true, min: 1, max: 8 });
  const loader = opts.loader ?? defaultLoader;
  registerBackend(
    'webgpu',
    async (ctx) => {
      const d = await initWebgpu(loader, ctx.explicit);
      return make('webgpu', backendReason(ctx, `webgpu (${d.software ? 'software adapter' : 'GPU'} ${d.label})`), {
        training: true,
        webgpu: true,
      });
    },
    BROWSER_PRIORITIES.webgpu,
    REGISTER,
  );
  registerBackend(
    'webgl',
    async (ctx) => {
      const d = await initWebgl(ctx.explicit);
      const precision = d.float32 ? 'float32' : 'float16 only';
      return make('webgl', backendReason(ctx, `webgl${d.version} (${d.renderer}, ${precision})`), {
        training: true,
        float32: d.float32,
      });
    },
    BROWSER_PRIORITIES.webgl,
    REGISTER,
  );
  registerBackend(
    'wasm',
    async (ctx) => {
      const info = await initWasm(loader, opts);
      const notes = info.notes.length ? `; ${info.notes.join('; ')}` : '';
      return make(
        'wasm',
        backendReason(ctx, `wasm (${info.threads === 1 ? '1 thread' : `${info.threads} threads`}${notes})`),
        {
          training: info.training,
          threads: info.threads,
        },
      );
    },
    BROWSER_PRIORITIES.wasm,
    REGISTER,
  );
  registerBackend(
    'cpu',
    async (ctx) => {
      await startCpuBackend();
      return make('cpu', backendReason(ctx, 'cpu (plain JavaScript, slowest)'), { training: true });
    },
    BROWSER_PRIORITIES.cpu,
    REGISTER,
  );
}

/**
 * Chooses, initialises and activates the tfjs backend in the browser and says in one line which one and why. A
 * backend asked for by name that cannot start is an SbmError('BACKEND_UNAVAILABLE') saying what is missing.
 */
export async function initBackend(opts: InitBrowserBackendOptions = {}): Promise<Backend> {
  const name = opts.backend;
  if (name !== undefined && name !== 'auto' && !(BROWSER_BACKENDS as readonly string[]).includes(name)) {
    throw new SbmError(
      'UNKNOWN_NAME',
      `backend: expected one of ${[...BROWSER_BACKENDS, 'auto'].map((n) => `"${n}"`).join(', ')}, got ${describeValue(name)}`,
      { argument: 'backend', expected: [...BROWSER_BACKENDS, 'auto'], received: name },
    );
  }
  registerBrowserBackends(opts);
  return initRegisteredBackend(name === 'auto' ? undefined : name, {
    requestedBy: `asked for by option backend: '${name}'`,
    log: opts.log === undefined ? (l: string) => console.info(l) : opts.log,
  });
}
