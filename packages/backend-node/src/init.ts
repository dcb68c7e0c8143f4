import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import {
  SbmError,
  backendReason,
  describeValue,
  initRegisteredBackend,
  makeBackend,
  registerBackend,
  startCpuBackend,
  type Backend,
  type BackendCapabilities,
} from '@sbm/core';
import { name as pkgName, version as pkgVersion } from '../package.json';
import { readEnv } from './env';
import { defaultLoader, type ModuleLoader } from './optional-module';
import { PngOutput } from './png';
import { FileCheckpointStorage } from './storage';
import { initTensorflow } from './tensorflow';
import { initWasm, resolveWasmThreads } from './wasm';
import { adapterLabel, initWebgpu } from './webgpu';

export const NODE_BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type NodeBackendName = (typeof NODE_BACKENDS)[number];

/** Automatic selection order (higher first), as tf.registerBackend priorities. */
export const NODE_PRIORITIES: Record<NodeBackendName, number> = { tensorflow: 40, webgpu: 30, wasm: 20, cpu: 10 };

export interface NodeBackendOptions {
  /** Threads for the wasm backend (1–8; 1 = single-threaded). Default: env SBM_WASM_THREADS, else the CPU count. */
  wasmThreads?: number;
  /** How optional packages are loaded (tests pass fakes). Default: dynamic import. */
  loader?: ModuleLoader;
}

export interface InitBackendOptions extends NodeBackendOptions {
  /** Which backend; default env SBM_BACKEND, else automatic (tensorflow › webgpu on a hardware GPU › wasm › cpu). */
  backend?: NodeBackendName | 'auto';
  /** Receives the one line saying which backend was chosen and why. Default: stderr; false: silent. */
  log?: ((line: string) => void) | false;
}

const storage = new FileCheckpointStorage();
const images = new PngOutput();

const make = (
  name: NodeBackendName,
  reason: string,
  capabilities: Partial<BackendCapabilities> & Pick<BackendCapabilities, 'training'>,
): Backend => makeBackend({ name, kind: 'node', reason, capabilities, storage, images });

// Re-registered by every initBackend call (with that call's options), so each replaces the last.
const REGISTER = { override: true, source: `${pkgName}@${pkgVersion}` };

/**
 * Registers sbm's Node backends with @sbm/core (`useBackend(name)` / `selectBackend()` then work). Called by
 * initBackend; call it yourself to use core's registry directly.
 */
export function registerNodeBackends(opts: NodeBackendOptions = {}): void {
  const loader = opts.loader ?? defaultLoader;

  registerBackend(
    'tensorflow',
    async (ctx) => {
      const info = await initTensorflow(loader);
      const tried = info.notes.length ? ` after ${info.notes.join('; ')}` : '';
      return make('tensorflow', backendReason(ctx, `tensorflow (libtensorflow through ${info.pkg}${tried})`), {
        training: true,
        threads: availableParallelism(),
      });
    },
    NODE_PRIORITIES.tensorflow,
    REGISTER,
  );

  registerBackend(
    'webgpu',
    async (ctx) => {
      const adapter = await initWebgpu(loader, ctx.explicit);
      const kind = adapter.software ? 'software adapter' : 'GPU';
      return make('webgpu', backendReason(ctx, `webgpu (Dawn, ${kind} ${adapterLabel(adapter)})`), {
        training: true,
        webgpu: true,
      });
    },
    NODE_PRIORITIES.webgpu,
    REGISTER,
  );

  registerBackend(
    'wasm',
    async (ctx) => {
      const info = await initWasm({ threads: opts.wasmThreads, loader });
      const notes = info.notes.length ? `; ${info.notes.join('; ')}` : '';
      const threads = info.threads === 1 ? '1 thread' : `${info.threads} threads`;
      return make('wasm', backendReason(ctx, `wasm (${threads}, SIMD${notes})`), {
        training: info.trainingKernels !== null,
        threads: info.threads,
      });
    },
    NODE_PRIORITIES.wasm,
    REGISTER,
  );

  registerBackend(
    'cpu',
    async (ctx) => {
      await startCpuBackend();
      // tfjs prints a banner recommending tfjs-node on the cpu backend's first use; our reason line already says
      // what was skipped and why.
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      return make('cpu', backendReason(ctx, 'cpu (plain JavaScript, slowest)'), { training: true });
    },
    NODE_PRIORITIES.cpu,
    REGISTER,
  );
}

/** The backend named by the option, else by SBM_BACKEND, else undefined (automatic). */
export function requestedBackend(option?: string): { name?: NodeBackendName; by: string } {
  const check = (v: unknown, where: string): NodeBackendName | undefined => {
    if (v === undefined || v === 'auto') return undefined;
    if (typeof v === 'string' && (NODE_BACKENDS as readonly string[]).includes(v)) return v as NodeBackendName;
    throw new SbmError(
      'UNKNOWN_NAME',
      `${where}: expected one of ${[...NODE_BACKENDS, 'auto'].map((n) => `"${n}"`).join(', ')}, got ${describeValue(v)}`,
      { argument: where, expected: [...NODE_BACKENDS, 'auto'], received: v },
    );
  };
  if (option !== undefined) return { name: check(option, 'backend'), by: `asked for by option backend: '${option}'` };
  const env = readEnv('SBM_BACKEND');
  return { name: check(env, 'SBM_BACKEND'), by: `asked for by SBM_BACKEND=${env}` };
}

function defaultLog(line: string): void {
  const p = (globalThis as { process?: { stderr?: { write(s: string): void } } }).process;
  if (p?.stderr) p.stderr.write(`${line}\n`);
  else console.info(line);
}

/**
 * Chooses, initialises and activates the tfjs backend sbm computes with in Node, and says in one line which one
 * and why. A backend asked for by name (option or SBM_BACKEND) that cannot load is an
 * SbmError('BACKEND_UNAVAILABLE') whose message says how to fix it; automatic selection moves on instead.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<Backend> {
  const { name, by } = requestedBackend(opts.backend);
  if (opts.wasmThreads !== undefined) resolveWasmThreads(opts.wasmThreads);
  registerNodeBackends(opts);
  return initRegisteredBackend(name, { requestedBy: by, log: opts.log === undefined ? defaultLog : opts.log });
}
