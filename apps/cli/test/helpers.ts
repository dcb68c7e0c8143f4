import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from '@sbm/training';

// The CLI is tested as users run it: the built dist/cli.js in a child process (exit codes, stderr lines, files).
export const root = fileURLToPath(new URL('../../..', import.meta.url));
export const cliDir = join(root, 'apps', 'cli');
export const CLI = join(cliDir, 'dist', 'cli.js');
// The default backend (wasm here and in CI), single-threaded: two test files run at once on two cores, and the
// tiny models here gain nothing from threads. Measured on the 2-core CI machine under load: 200 MLP [16, 16] steps
// 4.3 s CPU with 1 thread, 12.7 s with 2 (same weights bit for bit); `nll --n 100` 2.0 s vs 8.4 s. The threaded
// wasm the CLI uses by default stays covered: cli.test.ts (info) and robustness.test.ts (a signal at start-up) run
// children with SBM_WASM_THREADS=2 (threadedEnv), packages/backend-node/test/wasm-threads.test.ts in-process.
export const env: NodeJS.ProcessEnv = { ...process.env, SBM_WASM_THREADS: '1', CI: '1' };
/** `env` with the 2-thread wasm backend a CLI on two cores starts by default. */
export const threadedEnv: NodeJS.ProcessEnv = { ...env, SBM_WASM_THREADS: '2' };

/** Newest modification time under `path` (a file or a directory, recursively). */
export function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

/** Runs `jobs` with at most `limit` of them (children) at a time (two cores). */
export async function pool<T>(jobs: (() => Promise<T>)[], limit = 2): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]();
      }
    }),
  );
  return out;
}

/** dist/<entry> is missing or older than the sources / package.json / build config. */
function stale(dir: string, entry: string): boolean {
  const dist = join(dir, 'dist', entry);
  if (!existsSync(dist)) return true;
  const built = statSync(dist).mtimeMs;
  return ['src', 'package.json', 'tsup.config.ts'].some(
    (f) => existsSync(join(dir, f)) && newest(join(dir, f)) > built,
  );
}

/** The @sbm packages the CLI loads at run time, dependencies first. */
function sbmDepsInOrder(): string[] {
  const order: string[] = [];
  const visit = (name: string) => {
    const dir = join(root, 'packages', name);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      if (dep.startsWith('@sbm/')) visit(dep.slice(5));
    }
    if (!order.includes(name)) order.push(name);
  };
  const cli = JSON.parse(readFileSync(join(cliDir, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const dep of Object.keys(cli.dependencies)) if (dep.startsWith('@sbm/')) visit(dep.slice(5));
  return order;
}

/**
 * CI builds everything before testing; locally, rebuild what is stale so the child processes run current code.
 * Test files run in parallel: a lock directory keeps two of them from running tsup in one package at once (tsup
 * empties dist/ first, which would break the other's child processes).
 */
export function buildStaleDist(): void {
  const lock = join(tmpdir(), 'sbm-cli-test-build.lock');
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than the longest build belongs to a test run that died.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 600_000) rmdirSync(lock);
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`${lock}: another test file's build did not finish`);
      spawnSync('sleep', ['0.2']);
    }
  }
  try {
    for (const p of sbmDepsInOrder()) {
      const dir = join(root, 'packages', p);
      if (stale(dir, 'index.js')) execFileSync('npx', ['tsup'], { cwd: dir, stdio: 'pipe', timeout: 180_000 });
    }
    // The plugin the tests load (not a dependency of the CLI).
    const cosine = join(root, 'packages', 'sde-cosine');
    if (stale(cosine, 'index.js')) execFileSync('npx', ['tsup'], { cwd: cosine, stdio: 'pipe', timeout: 180_000 });
    if (stale(cliDir, 'cli.js')) execFileSync('npx', ['tsup'], { cwd: cliDir, stdio: 'pipe', timeout: 120_000 });
  } finally {
    rmdirSync(lock);
  }
}

export interface Result {
  code: number | null;
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  timeout?: number;
}

export function sbm(args: string[], opts: RunOptions): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: opts.env ?? env,
    encoding: 'utf8',
    timeout: opts.timeout ?? 60_000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `sbm args` as a promise (several children at once). */
export function sbmAsync(args: string[], opts: RunOptions): Promise<Result> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: opts.env ?? env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 60_000);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // 'exit' can come before the pipes are drained.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

/** stderr lines that are not the backend's one-line report or native-library warnings (Dawn/Vulkan probing). */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('sbm: ') && !l.startsWith('sbm: backend '));
}

/** A running `sbm` child whose stderr is watched (progress lines "step N/total"). */
export class Child {
  readonly proc: ChildProcess;
  stderr = '';
  stdout = '';
  readonly exited: Promise<Result>;
  private waiters: { test: () => boolean; resolve: () => void }[] = [];
  private partial = '';
  private maxStep = 0;

  constructor(args: string[], opts: RunOptions) {
    this.proc = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: opts.env ?? env });
    this.proc.stdout!.on('data', (b: Buffer) => (this.stdout += b.toString()));
    this.proc.stderr!.on('data', (b: Buffer) => {
      const text = b.toString();
      this.stderr += text;
      // Progress lines are parsed as they come (a run may print one per step: no rescans of all of stderr).
      const lines = (this.partial + text).split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) {
        const m = /^step (\d+)\//.exec(l);
        if (m) this.maxStep = Math.max(this.maxStep, Number(m[1]));
      }
      this.poll();
    });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), opts.timeout ?? 120_000);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        setImmediate(() => {
          this.poll(true);
          resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
        });
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The highest training step the progress lines reported so far (0 before the first). */
  step(): number {
    return this.maxStep;
  }

  /** Resolves once the child's stderr satisfies `test`, or the child ends (then `false`). */
  until(test: (stderr: string) => boolean): Promise<boolean> {
    if (test(this.stderr)) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiters.push({ test: () => test(this.stderr), resolve: () => resolve(test(this.stderr)) });
    });
  }

  /** Resolves once a progress line reports a step ≥ `step` (false: the child ended first). */
  untilStep(step: number): Promise<boolean> {
    return this.until(() => this.step() >= step);
  }

  private poll(ended = false): void {
    this.waiters = this.waiters.filter((w) => {
      if (ended || w.test()) {
        w.resolve();
        return false;
      }
      return true;
    });
  }
}

/** Every few steps a progress line, so that tests can stop a run at a chosen step (not every 2 s). */
export const fineProgressEnv: NodeJS.ProcessEnv = { ...env, SBM_PROGRESS_INTERVAL_MS: '0' };

export interface Pointer {
  slot: string;
  step: number;
}

export function readPointerFile(dir: string): Pointer | undefined {
  const p = join(dir, 'checkpoint.json');
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as Pointer;
}

/** CRC-32 of the weights of the checkpoint the pointer names: model, EMA and Adam moments, in that order. */
export function checkpointCrc(dir: string): { step: number; model: number; ema: number; optimizer: number } {
  const ptr = readPointerFile(dir);
  if (!ptr) throw new Error(`${dir}: no checkpoint.json`);
  const crc = (set: string) => crc32(readFileSync(join(dir, ptr.slot, set, 'weights.bin')));
  return { step: ptr.step, model: crc('model'), ema: crc('ema'), optimizer: crc('optimizer') };
}

/** SHA-256 of every file under `dir` by relative path (what "nothing was touched" compares). */
export function treeHashes(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = join(prefix, e.name);
    if (e.isDirectory()) Object.assign(out, treeHashes(dir, rel));
    else
      out[rel] = createHash('sha256')
        .update(readFileSync(join(dir, rel)))
        .digest('hex');
  }
  return out;
}

/** Seeded uniform numbers in [0, 1) (mulberry32): a schedule that fails reproduces from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `sbm train` on the tiny 2-D run the process tests share: toy:moons with 1000 points, the MLP config file `config`,
 * batch 64, `steps` steps, no sample figures, into `out`; `extra` flags (--sde, --warmup, --ckpt-every, …) go before
 * --out.
 */
export function moonsTrainArgs(config: string, out: string, steps: number, extra: string[] = []): string[] {
  return [
    'train',
    '--data',
    'toy:moons',
    '--config',
    config,
    '--n-data',
    '1000',
    '--batch',
    '64',
    '--steps',
    String(steps),
    '--sample-every',
    '0',
    ...extra,
    '--out',
    out,
  ];
}
