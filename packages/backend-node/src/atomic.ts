import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SbmError, describeValue } from '@sbm/core';

/** The file operations storage needs; injectable so tests can make one of them fail. */
export interface FsOps {
  /** Writes `data` to a new file and flushes it to disk before resolving. */
  writeFileSynced(path: string, data: Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  mkdir(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}

export const nodeFs: FsOps = {
  async writeFileSynced(path, data) {
    const fh = await fsp.open(path, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  readFile: async (path) => new Uint8Array(await fsp.readFile(path)),
  mkdir: async (path) => {
    await fsp.mkdir(path, { recursive: true });
  },
  exists: async (path) => {
    try {
      await fsp.stat(path);
      return true;
    } catch {
      return false;
    }
  },
};

function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Replaces several files in one directory so that no reader ever sees a half-written file and a failure leaves the
 * old files untouched: every file is first written and flushed under a temporary name in the same directory (same
 * file system, so rename is atomic), and only when all of them are on disk are they renamed over the targets, in
 * the order given. On any error before the renames, the temporaries are removed and the targets are as they were.
 */
export async function atomicWriteFiles(
  fs: FsOps,
  dir: string,
  files: { name: string; data: Uint8Array }[],
  what: string,
): Promise<void> {
  try {
    await fs.mkdir(dir);
  } catch (e) {
    throw ioError(`${what}: cannot create directory ${dir}`, e);
  }
  const staged: { tmp: string; target: string }[] = [];
  try {
    for (const f of files) {
      const target = join(dir, f.name);
      const tmp = tempName(target);
      staged.push({ tmp, target });
      await fs.writeFileSynced(tmp, f.data);
    }
  } catch (e) {
    await Promise.all(staged.map((s) => fs.unlink(s.tmp).catch(() => undefined)));
    throw ioError(`${what}: writing ${staged[staged.length - 1]?.target ?? dir} failed; nothing was replaced`, e);
  }
  for (let i = 0; i < staged.length; i++) {
    try {
      await fs.rename(staged[i].tmp, staged[i].target);
    } catch (e) {
      await Promise.all(staged.slice(i).map((s) => fs.unlink(s.tmp).catch(() => undefined)));
      const done = staged.slice(0, i).map((s) => basename(s.target));
      throw ioError(
        `${what}: renaming onto ${staged[i].target} failed` +
          (done.length ? ` after replacing ${done.join(', ')}` : '; nothing was replaced'),
        e,
      );
    }
  }
}

/**
 * Writes one file so that no reader ever sees it half-written (see atomicWriteFiles): the one atomic file write in
 * sbm's Node code; strings are written as UTF-8.
 */
export async function atomicWriteFile(path: string, data: Uint8Array | string, fs: FsOps = nodeFs): Promise<void> {
  if (typeof path !== 'string' || !path) {
    throw new SbmError('INVALID_ARGUMENT', `atomicWriteFile: path: expected a file path, got ${describeValue(path)}`, {
      argument: 'path',
    });
  }
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `atomicWriteFile: data: expected a Uint8Array or a string, got ${describeValue(data)}`,
      { argument: 'data' },
    );
  }
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  await atomicWriteFiles(fs, dirname(path), [{ name: basename(path), data: bytes }], 'atomicWriteFile');
}

export function ioError(message: string, cause: unknown): SbmError {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  // The errno code (EACCES, EROFS, ENOSPC, ...) and the path, so callers can tell a read-only or full disk apart.
  const { code, path } = (cause ?? {}) as { code?: unknown; path?: unknown };
  return new SbmError(
    'IO_ERROR',
    `${message}: ${reason}`,
    {
      cause: reason,
      ...(typeof code === 'string' ? { errno: code } : {}),
      ...(typeof path === 'string' ? { path } : {}),
    },
    { cause },
  );
}
