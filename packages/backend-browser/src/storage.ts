import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  describeValue,
  type CheckpointLock,
  type CheckpointLockHolder,
  type CheckpointLockOptions,
  type CheckpointStorage,
} from '@sbm/core';
import { download } from './download';

const SCHEMES = ['indexeddb://', 'localstorage://', 'downloads://'] as const;
const FILES_DB = 'sbm-files';
const FILES_STORE = 'files';

/** `name` → `indexeddb://name`; URLs with a tf.io browser scheme are kept. */
export function checkpointUrl(location: unknown): string {
  if (typeof location !== 'string' || location.length === 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `location: expected a name or an indexeddb:// / localstorage:// / downloads:// URL, got ${describeValue(location)}`,
    );
  }
  if (SCHEMES.some((s) => location.startsWith(s))) return location;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `location: expected indexeddb://, localstorage:// or downloads://, got ${describeValue(location)}`,
    );
  }
  return `indexeddb://${location}`;
}

/** The part of the Web Locks API used here (lib.dom's LockManager, kept local so no DOM lib is required). */
interface LockManagerLike {
  request(
    name: string,
    options: { mode: 'exclusive'; ifAvailable: boolean },
    callback: (lock: object | null) => Promise<void> | undefined,
  ): Promise<unknown>;
}

function requestToPromise<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function openFiles(): Promise<IDBDatabase> {
  const idb = globalThis.indexedDB;
  if (!idb)
    throw new SbmError('UNSUPPORTED', 'IndexedDB is not available here (private mode or a non-browser context)');
  const req = idb.open(FILES_DB, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(FILES_STORE);
  return requestToPromise(req);
}

/** One IndexedDB transaction: it commits whole or not at all, which is what makes writeFile atomic. */
async function withStore<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openFiles();
  try {
    const tx = db.transaction(FILES_STORE, mode);
    const result = requestToPromise(fn(tx.objectStore(FILES_STORE)));
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
    });
    return await result;
  } finally {
    db.close();
  }
}

function checkName(name: unknown, fn: string): string {
  if (typeof name !== 'string' || !/^[\w][\w.-]*$/.test(name)) {
    throw new SbmError('INVALID_ARGUMENT', `${fn}: name: expected a plain file name, got ${describeValue(name)}`);
  }
  return name;
}

/**
 * Checkpoints in the browser through tf.io: IndexedDB (default; `indexeddb://name` or a bare name), localStorage,
 * or a download (`downloads://name`, save only). Side files live in their own IndexedDB store.
 */
export class BrowserCheckpointStorage implements CheckpointStorage {
  handler(location: string): tf.io.IOHandler {
    const url = checkpointUrl(location);
    const saver = tf.io.getSaveHandlers(url)[0];
    const loader = url.startsWith('downloads://') ? undefined : tf.io.getLoadHandlers(url)[0];
    return {
      save: saver?.save?.bind(saver),
      load: loader?.load
        ? async () => {
            try {
              return await loader.load!();
            } catch (e) {
              const msg = e instanceof Error ? e.message : String(e);
              if (/cannot find model/i.test(msg)) {
                throw new SbmError('FILE_NOT_FOUND', `load checkpoint: nothing stored at ${url}`, { location: url });
              }
              throw new SbmError('CORRUPT_CHECKPOINT', `load checkpoint: ${url}: ${msg}`, { location: url });
            }
          }
        : undefined,
    };
  }

  async exists(location: string): Promise<boolean> {
    const url = checkpointUrl(location);
    if (url.startsWith('downloads://')) return false;
    const models = await tf.io.listModels();
    return url in models;
  }

  /**
   * The writer lock of `location` through the Web Locks API (navigator.locks, shared by every tab and worker of the
   * origin; the browser releases it when the holder's page closes, so there is never a stale lock to take over).
   * LOCKED when another tab or worker holds it; UNSUPPORTED where the API is missing (old browsers, non-secure
   * contexts), since IndexedDB offers no exclusive-create primitive to build a lock that survives a closed tab.
   * Nothing is left to clean under it: IndexedDB writes commit whole or not at all.
   */
  async lock(location: string, opts: CheckpointLockOptions = {}): Promise<CheckpointLock> {
    const url = checkpointUrl(location);
    const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
    if (!locks || typeof locks.request !== 'function') {
      throw new SbmError('UNSUPPORTED', `lock ${url}: the Web Locks API (navigator.locks) is not available here`);
    }
    const name = `sbm-checkpoint:${url}`;
    const holder: CheckpointLockHolder = {
      pid: 0,
      hostname: globalThis.location?.host ?? 'browser',
      startedAt: new Date().toISOString(),
      ...(opts.owner ? { owner: opts.owner } : {}),
    };
    let release!: () => void;
    const releasedPromise = new Promise<void>((res) => (release = res));
    const granted = await new Promise<boolean>((resolve, reject) => {
      locks
        .request(name, { mode: 'exclusive', ifAvailable: true }, (lock) => {
          resolve(lock !== null);
          return lock === null ? undefined : releasedPromise;
        })
        .catch(reject);
    });
    if (!granted) {
      throw new SbmError('LOCKED', `${url} is locked by another tab or worker of this site (Web Lock "${name}")`, {
        location: url,
        lock: name,
      });
    }
    let held = true;
    return {
      location: url,
      holder,
      removed: [],
      warnings: [],
      get held() {
        return held;
      },
      async release() {
        if (!held) return;
        held = false;
        release();
      },
    };
  }

  async writeFile(location: string, name: string, data: Uint8Array | string): Promise<void> {
    const url = checkpointUrl(location);
    checkName(name, 'writeFile');
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `writeFile: data: expected a Uint8Array or string, got ${describeValue(data)}`,
      );
    }
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    if (url.startsWith('downloads://')) {
      download(bytes, `${url.slice('downloads://'.length)}-${name}`, 'application/octet-stream');
      return;
    }
    await withStore('readwrite', (s) => s.put(bytes.slice(), `${url}/${name}`));
  }

  async readFile(location: string, name: string): Promise<Uint8Array> {
    const url = checkpointUrl(location);
    checkName(name, 'readFile');
    if (url.startsWith('downloads://')) {
      throw new SbmError(
        'UNSUPPORTED',
        'readFile: downloads:// is write-only; load files chosen by the user with tf.io.browserFiles',
      );
    }
    const v = await withStore('readonly', (s) => s.get(`${url}/${name}`) as IDBRequest<Uint8Array | undefined>);
    if (v === undefined) throw new SbmError('FILE_NOT_FOUND', `readFile: ${url}/${name} does not exist`);
    return new Uint8Array(v);
  }
}

export function browserStorage(): BrowserCheckpointStorage {
  return new BrowserCheckpointStorage();
}
