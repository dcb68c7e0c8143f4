import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { expectRejectsSbm, expectSbmError } from '@sbm/test-harness';
import type { SbmError } from '@sbm/core';
import { FileCheckpointStorage, LOCK_FILE, lockDirectory, pidState, type FsOps, nodeFs } from '@sbm/backend-node';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
// Inside the repository so that the bundle's external imports (@tensorflow/tfjs) resolve from node_modules.
const outDir = join(root, 'node_modules', '.cache', 'sbm-backend-node-test');
const bundle = join(outDir, 'lock-child.mjs');
let base: string;
const fresh = () => mkdtempSync(join(base, 'run-'));

/** The SbmError `p` rejects with, checked like expectRejectsSbm. */
async function rejection(p: Promise<unknown>, code: string, message: RegExp): Promise<SbmError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expectSbmError(e, code, message);
  return e as SbmError;
}

beforeAll(async () => {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, 'fixtures', 'lock-child.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    plugins: [
      {
        name: 'sbm-sources',
        setup(b) {
          b.onResolve({ filter: /^@sbm\/[^/]+$/ }, (a) => ({
            path: join(root, 'packages', a.path.slice(5), 'src', 'index.ts'),
          }));
          b.onResolve({ filter: /^[^./]/ }, (a) =>
            a.path.startsWith('@sbm/') ? undefined : { path: a.path, external: true },
          );
        },
      },
    ],
  });
  base = mkdtempSync(join(tmpdir(), 'sbm-lock-test-'));
}, 60_000);
afterAll(() => rmSync(base, { recursive: true, force: true }));

interface Held {
  child: ChildProcessWithoutNullStreams;
  info: { pid: number; takenOver: unknown; removed: string[] };
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a child that takes the lock of `dir` and holds it until told otherwise. */
function holdInChild(dir: string): Promise<Held> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [bundle, dir, 'hold'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    let err = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.on('exit', (code, signal) => r({ code, signal })),
    );
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        if (lines.length === 1) res({ child, info: JSON.parse(l), lines, exited });
      }
    });
    void exited.then(({ code }) => {
      if (lines.length === 0) rej(new Error(`lock child exited with ${code} before locking: ${err}`));
    });
  });
}

/** Runs a child that tries to lock `dir` once; resolves with what it printed. */
function tryInChild(dir: string): Promise<Record<string, unknown>> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [bundle, dir, 'try'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) rej(new Error(`try child exited with ${code}: ${err}`));
      else res(JSON.parse(out.trim()) as Record<string, unknown>);
    });
  });
}

describe('run-directory lock (child processes)', () => {
  it('a second process gets LOCKED naming the holder; after release the directory can be locked again', async () => {
    const dir = fresh();
    const held = await holdInChild(dir);
    const record = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
    expect(record).toMatchObject({ format: 'sbm-lock', pid: held.info.pid, hostname: hostname() });
    expect(Number.isNaN(Date.parse(record.startedAt))).toBe(false);

    const other = await tryInChild(dir);
    expect(other.ok).toBe(false);
    expect(other.code).toBe('LOCKED');
    expect(other.message).toContain(`pid ${held.info.pid} on ${hostname()}`);
    expect(other.message).toContain(record.startedAt);
    expect(other.holder).toMatchObject({ pid: held.info.pid, hostname: hostname(), startedAt: record.startedAt });

    // And in this process, through the storage.
    const storage = new FileCheckpointStorage();
    const e = await rejection(storage.lock(dir), 'LOCKED', /pid \d+ on .*that process is running/);
    expect(e.details?.holder).toMatchObject({ pid: held.info.pid, owner: 'lock-child hold' });

    held.child.stdin.write('release\n');
    expect((await held.exited).code).toBe(0);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    const mine = await storage.lock(dir);
    expect(mine.takenOver).toBeUndefined();
    expect(mine.held).toBe(true);
    await mine.release();
    await mine.release(); // idempotent
    expect(mine.held).toBe(false);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it("a killed holder's stale lock is taken over, saying whose it was", async () => {
    const dir = fresh();
    const held = await holdInChild(dir);
    held.child.kill('SIGKILL');
    expect((await held.exited).signal).toBe('SIGKILL');
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
    expect(pidState(held.info.pid)).toBe('gone');
    const next = await tryInChild(dir);
    expect(next.ok).toBe(true);
    expect(next.takenOver).toMatchObject({ pid: held.info.pid, hostname: hostname() });
    expect((next.warnings as string[]).join('\n')).toMatch(
      new RegExp(`took over a stale lock of pid ${held.info.pid} on .*that process is gone`),
    );
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('process.exit with the lock held removes it (exit hook)', async () => {
    const dir = fresh();
    const held = await holdInChild(dir);
    held.child.stdin.write('exit\n');
    expect((await held.exited).code).toBe(0);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });
});

describe('run-directory lock (this process)', () => {
  it('a lock from another host is never taken over; an unreadable lock file is LOCKED too', async () => {
    const dir = fresh();
    const rec = {
      format: 'sbm-lock',
      pid: 999_999_999,
      hostname: 'elsewhere',
      startedAt: '2020-01-01T00:00:00.000Z',
      token: 'x',
    };
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify(rec));
    await expectRejectsSbm(lockDirectory(dir), 'LOCKED', /pid 999999999 on elsewhere, since 2020-01-01.*another host/);
    writeFileSync(join(dir, LOCK_FILE), '');
    await expectRejectsSbm(lockDirectory(dir), 'LOCKED', /not an sbm lock record.*delete it/);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe('');
  });

  it('two lockers in one process: the second is LOCKED until the first releases', async () => {
    const dir = fresh();
    const a = await lockDirectory(dir);
    await expectRejectsSbm(lockDirectory(dir), 'LOCKED', new RegExp(`pid ${process.pid} `));
    await a.release();
    const b = await lockDirectory(dir);
    await b.release();
  });

  it('removes orphan temporaries of interrupted saves under the lock, and nothing else', async () => {
    const dir = fresh();
    const model = join(dir, 'slot-a', 'model');
    mkdirSync(model, { recursive: true });
    const orphans = [
      join(model, '.weights.bin.0123456789ab.tmp'),
      join(dir, '.checkpoint.json.a1b2c3d4e5f6.tmp'),
      join(dir, 'slot-a', '.config.json.ffffffffffff.tmp'),
    ];
    const kept = [
      join(model, 'weights.bin'),
      join(dir, 'notes.tmp'),
      join(dir, '.hidden.tmp'),
      join(dir, 'checkpoint.json'),
    ];
    for (const p of [...orphans, ...kept]) writeFileSync(p, 'x');
    const lock = await new FileCheckpointStorage().lock(dir);
    expect([...lock.removed].sort()).toEqual([...orphans].sort());
    expect(lock.warnings.join('\n')).toContain('removed 3 leftover temporary file(s)');
    for (const p of orphans) expect(existsSync(p)).toBe(false);
    for (const p of kept) expect(existsSync(p)).toBe(true);
    await lock.release();
  });

  it('a read-only location is IO_ERROR naming EROFS / EACCES and the path, not ENOENT (fs calls mocked)', async () => {
    // Root ignores permission bits, so chmod cannot make a read-only directory here; the real EROFS mount case is
    // in packages/training/test/disk-faults.test.ts (skipped where mounting is not allowed).
    const dir = fresh();
    for (const code of ['EROFS', 'EACCES'] as const) {
      const fs: FsOps = {
        ...nodeFs,
        writeFileSynced: async (path) => {
          throw Object.assign(new Error(`${code}: read-only file system, open '${path}'`), { code, path });
        },
      };
      const storage = new FileCheckpointStorage({ fs });
      const e = await rejection(storage.writeFile(dir, 'checkpoint.json', '{}'), 'IO_ERROR', new RegExp(code));
      expect(e.message).toContain(join(dir, 'checkpoint.json'));
      expect(e.details?.errno).toBe(code);
      expect(String(e.details?.path)).toContain(dir);
    }
  });
});
