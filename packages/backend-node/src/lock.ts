import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { SbmError, type CheckpointLock, type CheckpointLockHolder, type CheckpointLockOptions } from '@sbm/core';
import { ioError } from './atomic';

/** The lock file in a locked directory. */
export const LOCK_FILE = 'sbm.lock';

/** What the lock file holds: the holder plus a token that tells this lock from a later one of the same pid. */
interface LockRecord extends CheckpointLockHolder {
  format: 'sbm-lock';
  token: string;
}

/** Temporaries of atomicWriteFiles (`.<name>.<12 hex>.tmp`) and of this module's lock writes. */
const TEMP_RE = /^\..+\.[0-9a-f]{12}\.tmp$/;
/** Run directory, slots, artifact sets: how deep a checkpoint's files lie. */
const CLEAN_DEPTH = 3;

/** Locks held by this process, released synchronously if it exits without releasing them. */
const heldByUs = new Map<string, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [path, token] of heldByUs) {
      try {
        const rec = JSON.parse(readFileSync(path, 'utf8')) as LockRecord;
        if (rec.token === token) unlinkSync(path);
      } catch {
        // Gone already or unreadable: nothing of ours to remove.
      }
    }
  });
}

export type PidState = 'alive' | 'gone' | 'unknown';

/** Whether process `pid` exists on this host: signal 0 checks without sending anything. */
export function pidState(pid: number): PidState {
  if (!Number.isInteger(pid) || pid <= 0) return 'unknown';
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // EPERM: it exists but belongs to another user.
    if (code === 'EPERM') return 'alive';
    if (code === 'ESRCH') return 'gone';
    return 'unknown';
  }
}

function describeHolder(h: CheckpointLockHolder): string {
  return `pid ${h.pid} on ${h.hostname}, since ${h.startedAt}${h.owner ? ` (${h.owner})` : ''}`;
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

async function readRecord(path: string): Promise<LockRecord | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 'missing';
    throw ioError(`lock: reading ${path} failed`, e);
  }
  try {
    const r = JSON.parse(text) as LockRecord;
    if (r?.format === 'sbm-lock' && Number.isInteger(r.pid) && typeof r.hostname === 'string') return r;
  } catch {
    // Falls through: not a lock record.
  }
  return 'unreadable';
}

/**
 * Creates `path` holding `data` only if it does not exist, so that nobody ever reads it half-written: the record is
 * written and flushed under a temporary name, then hard-linked to `path` (link fails with EEXIST when `path` exists,
 * which is the exclusive create). Returns false when `path` exists.
 */
async function createExclusive(path: string, data: string, dir: string): Promise<boolean> {
  const tmp = join(dir, `.${LOCK_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fsp.open(tmp, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.link(tmp, path);
    return true;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    // A file system without hard links: O_EXCL create, then the content (a reader may briefly see it empty and
    // then retries, see readHolder).
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (e2) {
      if (errnoCode(e2) === 'EEXIST') return false;
      throw e2;
    }
    closeSync(fd);
    await fsp.writeFile(path, data);
    return true;
  } finally {
    await fsp.unlink(tmp).catch(() => undefined);
  }
}

async function readHolder(path: string): Promise<LockRecord | 'missing' | 'unreadable'> {
  // An unreadable record may be one being written without hard links: give it a moment.
  for (let i = 0; ; i++) {
    const r = await readRecord(path);
    if (r !== 'unreadable' || i === 3) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Removes temporaries an interrupted atomic write left under `dir` (the caller holds the lock). */
export async function removeOrphanTemporaries(dir: string, depth = CLEAN_DEPTH): Promise<string[]> {
  const removed: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return removed;
    throw ioError(`lock: listing ${dir} failed`, e);
  }
  for (const ent of entries) {
    const path = join(dir, ent.name);
    if (ent.isFile() && TEMP_RE.test(ent.name)) {
      try {
        await fsp.unlink(path);
        removed.push(path);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw ioError(`lock: removing the leftover ${path} failed`, e);
      }
    } else if (ent.isDirectory() && depth > 1) {
      removed.push(...(await removeOrphanTemporaries(path, depth - 1)));
    }
  }
  return removed;
}

export interface LockDirectoryOptions extends CheckpointLockOptions {
  /** Remove orphan temporaries of interrupted writes once the lock is held (default true). */
  removeTemporaries?: boolean;
}

/**
 * Takes the exclusive writer lock of directory `dir` (created if missing): the file `sbm.lock` holding the holder's
 * pid, hostname and start time, created atomically and exclusively. A live holder gives SbmError('LOCKED') naming
 * it; a lock left by a process that is gone (same host, `kill(pid, 0)` → ESRCH) is taken over and reported in
 * `takenOver` and `warnings`. Then the leftovers of interrupted writes are removed. The lock is released by
 * `release()`, and if the process exits first (process.exit, end of the event loop) by an exit hook; a process
 * killed outright leaves a stale lock, which the next writer takes over.
 */
export async function lockDirectory(dir: string, opts: LockDirectoryOptions = {}): Promise<CheckpointLock> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (e) {
    throw ioError(`lock: cannot create directory ${dir}`, e);
  }
  const path = join(dir, LOCK_FILE);
  const holder: CheckpointLockHolder = {
    pid: process.pid,
    hostname: osHostname(),
    startedAt: new Date().toISOString(),
    ...(opts.owner ? { owner: opts.owner } : {}),
  };
  const record: LockRecord = { format: 'sbm-lock', ...holder, token: randomBytes(8).toString('hex') };
  const data = JSON.stringify(record);
  let takenOver: CheckpointLockHolder | undefined;
  for (let attempt = 0; ; attempt++) {
    let created: boolean;
    try {
      created = await createExclusive(path, data, dir);
    } catch (e) {
      throw ioError(`lock: cannot create ${path}`, e);
    }
    if (created) break;
    const current = await readHolder(path);
    if (current === 'missing') continue; // released meanwhile: try again
    if (current === 'unreadable') {
      throw new SbmError(
        'LOCKED',
        `lock: ${path} exists but is not an sbm lock record; if no sbm process writes to ${dir}, delete it`,
        { path },
      );
    }
    const stale = current.hostname === holder.hostname && pidState(current.pid) === 'gone';
    if (!stale || attempt >= 5) {
      const { format: _f, token: _t, ...h } = current;
      const how = stale
        ? 'its process is gone, but taking the lock over kept failing (another process is taking it?)'
        : current.hostname === holder.hostname
          ? 'that process is running; wait for it to finish or stop it'
          : `another host; if no sbm process there writes to ${dir}, delete ${path}`;
      throw new SbmError('LOCKED', `${dir} is locked by ${describeHolder(h)}: ${how}`, { path, holder: h });
    }
    if (await takeOver(path, current, dir)) {
      const { format: _f, token: _t, ...h } = current;
      takenOver = h;
    }
  }
  heldByUs.set(path, record.token);
  installExitHook();
  const warnings: string[] = [];
  if (takenOver) {
    warnings.push(`${dir}: took over a stale lock of ${describeHolder(takenOver)} (that process is gone)`);
  }
  let removed: string[] = [];
  try {
    if (opts.removeTemporaries !== false) removed = await removeOrphanTemporaries(dir);
  } catch (e) {
    await releaseLock(path, record.token);
    throw e;
  }
  if (removed.length) {
    warnings.push(`${dir}: removed ${removed.length} leftover temporary file(s) of an interrupted save`);
  }
  let held = true;
  return {
    location: dir,
    holder,
    ...(takenOver ? { takenOver } : {}),
    removed,
    warnings,
    get held() {
      return held;
    },
    async release() {
      if (!held) return;
      held = false;
      await releaseLock(path, record.token);
    },
  };
}

async function releaseLock(path: string, token: string): Promise<void> {
  heldByUs.delete(path);
  const current = await readRecord(path).catch(() => 'unreadable' as const);
  // Only our own record: a lock taken over from us (we looked dead) belongs to someone else now.
  if (typeof current === 'object' && current.token === token) {
    await fsp.unlink(path).catch((e: unknown) => {
      if (errnoCode(e) !== 'ENOENT') throw ioError(`lock: removing ${path} failed`, e);
    });
  }
}

/**
 * Replaces the stale record `seen` at `path`. Two processes may find the same stale lock: a takeover mutex
 * (`sbm.lock.takeover`, itself exclusive) makes sure only one of them removes it, and the record is re-read under
 * it so that a lock taken meanwhile is never removed. Returns whether the stale record was removed.
 */
async function takeOver(path: string, seen: LockRecord, dir: string): Promise<boolean> {
  const mutex = `${path}.takeover`;
  const mine = JSON.stringify({ format: 'sbm-lock', pid: process.pid, hostname: osHostname(), token: 'takeover' });
  if (!(await createExclusive(mutex, mine, dir))) {
    const other = await readRecord(mutex);
    // A takeover mutex whose process died mid-takeover is removed; the caller then tries again.
    if (typeof other === 'object' && other.hostname === osHostname() && pidState(other.pid) === 'gone') {
      await fsp.unlink(mutex).catch(() => undefined);
    } else {
      await new Promise((res) => setTimeout(res, 20));
    }
    return false;
  }
  try {
    const again = await readRecord(path);
    if (typeof again !== 'object' || again.token !== seen.token) return false;
    await fsp.unlink(path);
    return true;
  } finally {
    await fsp.unlink(mutex).catch(() => undefined);
  }
}
