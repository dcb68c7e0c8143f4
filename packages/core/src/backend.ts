import { getBackend as activeTfBackend, ready, setBackend } from '@tensorflow/tfjs';
import type * as tf from '@tensorflow/tfjs';
import { SbmError } from './errors';
import { createRegistry, type RegisterOptions } from './registry';

export type BackendKind = 'node' | 'browser';

export interface BackendCapabilities {
  /** Every gradient kernel that sbm's models need is registered (full training steps run). */
  training: boolean;
  /** Runs on WebGPU. */
  webgpu: boolean;
  /** float32 textures / buffers are exact (false on some WebGL devices that fall back to float16). */
  float32: boolean;
  /** Worker threads the backend computes with (1 for single-threaded backends). */
  threads: number;
}

/** Where checkpoints live: a tf.io handler per location (directory path in Node, IndexedDB key in the browser). */
export interface CheckpointStorage {
  /** A tf.io handler that saves to / loads from `location`. */
  handler(location: string): tf.io.IOHandler;
  /** Whether something is stored at `location`. */
  exists(location: string): Promise<boolean>;
  /** Raw file / blob access for side files (config JSON, optimizer state). Writes are atomic. */
  writeFile(location: string, name: string, data: Uint8Array | string): Promise<void>;
  readFile(location: string, name: string): Promise<Uint8Array>;
  /**
   * Takes the exclusive writer lock of `location` (a run directory, a key prefix) before anything writes there.
   * A live holder: SbmError('LOCKED') naming it. A stale lock (its process is gone) is taken over, reported in
   * `takenOver` / `warnings`. Under the lock, the storage removes what interrupted writes left (orphan temporaries).
   * Optional: a storage without it offers no protection against two writers.
   */
  lock?(location: string, opts?: CheckpointLockOptions): Promise<CheckpointLock>;
}

/** Who holds (or held) a checkpoint location's lock. */
export interface CheckpointLockHolder {
  /** Process id (Node), or 0 where there is none (a browser tab). */
  pid: number;
  hostname: string;
  /** ISO 8601 time the lock was taken. */
  startedAt: string;
  /** What took it, e.g. "sbm train" (free text). */
  owner?: string;
}

export interface CheckpointLockOptions {
  /** Recorded in the lock as `owner` (e.g. "sbm train --out runs/x"). */
  owner?: string;
}

/** An exclusive writer lock on a checkpoint location, held until `release()` (or the process ends). */
export interface CheckpointLock {
  readonly location: string;
  readonly holder: CheckpointLockHolder;
  /** The previous holder of a stale lock that was taken over (its process was gone). */
  readonly takenOver?: CheckpointLockHolder;
  /** Leftovers of an interrupted write removed under the lock (paths / keys). */
  readonly removed: string[];
  /** Lines for the user: a takeover, removed leftovers. */
  readonly warnings: string[];
  /** Whether this lock is still held (false after release). */
  readonly held: boolean;
  /** Releases the lock; idempotent. */
  release(): Promise<void>;
}

/** Image output: an RGBA or grayscale byte image → PNG at `location`. */
export interface ImageOutput {
  encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<Uint8Array> | Uint8Array;
  writePng?(location: string, pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<void>;
}

/** A ready tfjs backend with what sbm needs to know about it. */
export interface Backend {
  /** sbm's name for it: 'tensorflow', 'webgpu', 'webgl', 'wasm', 'cpu'. */
  readonly name: string;
  /** The tfjs backend name that is active ('tensorflow', 'webgpu', 'wasm', 'cpu', ...). */
  readonly tfBackend: string;
  readonly kind: BackendKind;
  readonly capabilities: BackendCapabilities;
  /** One line: why this backend was chosen (or how it was asked for). */
  readonly reason: string;
  readonly storage?: CheckpointStorage;
  readonly images?: ImageOutput;
}

export interface BackendFactoryContext {
  /** True when the user asked for this backend by name (option or env var), false in automatic selection. */
  explicit: boolean;
  /** How it was asked for ("asked for by SBM_BACKEND=wasm"), for the reason line; set with `explicit`. */
  requestedBy?: string;
}

/**
 * Initialises a backend. It throws an SbmError('BACKEND_UNAVAILABLE') whose message says what is missing and how
 * to fix it when it cannot load; automatic selection then moves on to the next one.
 */
export type BackendFactory = (ctx: BackendFactoryContext) => Promise<Backend>;

const backends = createRegistry<BackendFactory>('backend');
let current: Backend | undefined;

/**
 * Registers a backend under `name`. Higher priority is tried first in automatic selection (as tf.registerBackend).
 * A name that is taken throws DUPLICATE_NAME unless `{ override: true }` (the adapters re-register theirs so).
 */
export function registerBackend(
  name: string,
  factory: BackendFactory,
  priority = 0,
  opts: Omit<RegisterOptions, 'priority'> = {},
): void {
  backends.register(name, factory, { ...opts, priority });
}

export function removeBackend(name: string): void {
  backends.unregister(name);
}

/** Registered backend names, highest priority first. */
export function listBackends(): { name: string; priority: number }[] {
  return backends.entries().map(({ name, priority }) => ({ name, priority }));
}

export interface SelectionAttempt {
  name: string;
  ok: boolean;
  message: string;
}

export interface BackendSelection {
  backend: Backend;
  /** Every backend tried, in order, with why it was skipped. */
  attempts: SelectionAttempt[];
}

/**
 * Initialises and activates a backend. With a name, exactly that one (its own error if it cannot load); without,
 * the registered backends in priority order, the first that loads wins and `reason` lists why the ones before it
 * were skipped.
 */
export async function selectBackend(name?: string, opts: { requestedBy?: string } = {}): Promise<BackendSelection> {
  if (name !== undefined) {
    const factory = backends.get(name, 'backend');
    const backend = await factory({ explicit: true, requestedBy: opts.requestedBy });
    current = backend;
    return { backend, attempts: [{ name, ok: true, message: backend.reason }] };
  }
  const attempts: SelectionAttempt[] = [];
  for (const { name: n, value: factory } of backends.entries()) {
    try {
      const backend = await factory({ explicit: false });
      attempts.push({ name: n, ok: true, message: backend.reason });
      const skipped = attempts.filter((a) => !a.ok).map((a) => `${a.name}: ${a.message}`);
      const reason = skipped.length ? `${backend.reason} (skipped ${skipped.join('; ')})` : backend.reason;
      current = { ...backend, reason };
      return { backend: current, attempts };
    } catch (e) {
      attempts.push({ name: n, ok: false, message: e instanceof Error ? e.message.split('\n')[0] : String(e) });
    }
  }
  throw new SbmError(
    'BACKEND_UNAVAILABLE',
    `no backend could be initialised: ${attempts.map((a) => `${a.name}: ${a.message}`).join('; ') || 'none registered'}`,
    { attempts },
  );
}

/** `selectBackend(name)` returning just the backend. */
export async function useBackend(name?: string): Promise<Backend> {
  return (await selectBackend(name)).backend;
}

/** The backend chosen by the last `useBackend`, or a description of the plain tfjs backend if none was chosen. */
export function getBackend(): Backend | undefined {
  return current;
}

/** What an adapter's factory knows about the backend it started; makeBackend fills in the rest. */
export interface BackendParts {
  name: string;
  kind: BackendKind;
  reason: string;
  /** Only what differs from the defaults (no WebGPU, exact float32, one thread). */
  capabilities: Partial<BackendCapabilities> & Pick<BackendCapabilities, 'training'>;
  storage?: CheckpointStorage;
  images?: ImageOutput;
}

/**
 * The Backend object for the tfjs backend that is active now. It holds no tfjs namespace: callers import
 * `@tensorflow/tfjs` themselves, so a bundler keeps only the ops an app uses.
 */
export function makeBackend(parts: BackendParts): Backend {
  return {
    name: parts.name,
    tfBackend: activeTfBackend(),
    kind: parts.kind,
    capabilities: { webgpu: false, float32: true, threads: 1, ...parts.capabilities },
    reason: parts.reason,
    storage: parts.storage,
    images: parts.images,
  };
}

/** A factory's reason line: `what`, plus how the user asked for it when it was chosen by name. */
export function backendReason(ctx: BackendFactoryContext, what: string): string {
  return ctx.explicit ? `${what}: ${ctx.requestedBy ?? 'asked for by name'}` : what;
}

/** Activates tfjs's plain-JavaScript cpu backend (the last resort of every adapter). */
export async function startCpuBackend(): Promise<void> {
  if (!(await setBackend('cpu'))) throw new SbmError('BACKEND_UNAVAILABLE', "tfjs's cpu backend failed to start");
  await ready();
}

/**
 * The end of every adapter's initBackend: select `name` (automatic when undefined) among the registered backends
 * and log the one line saying which one runs and why.
 */
export async function initRegisteredBackend(
  name: string | undefined,
  opts: { requestedBy: string; log: ((line: string) => void) | false },
): Promise<Backend> {
  const { backend } = await selectBackend(name, { requestedBy: opts.requestedBy });
  if (opts.log) opts.log(`sbm: backend ${backend.reason}`);
  return backend;
}
