import { SbmError } from '@sbm/core';

/**
 * Loads an optional package by name. Injectable so tests can pretend a package is (not) installed without touching
 * node_modules.
 */
export type ModuleLoader = (specifier: string) => Promise<unknown>;

export const defaultLoader: ModuleLoader = (specifier) => import(/* @vite-ignore */ specifier);

export type LoadOutcome<T> =
  | { ok: true; module: T }
  | { ok: false; missing: true; message: string }
  | { ok: false; missing: false; message: string };

/** First line of an error, without a stack: what users see in selection messages. */
export function firstLine(e: unknown): string {
  const msg =
    e instanceof Error ? e.message : typeof e === 'object' && e && 'message' in e ? String(e.message) : String(e);
  return msg.split('\n')[0].trim();
}

/**
 * True when `e` says that `specifier` itself cannot be found (as opposed to the package being present but one of its
 * own dependencies or native parts failing to load).
 */
function isMissing(e: unknown, specifier: string): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  const msg = e instanceof Error ? e.message : String(e);
  const notFound =
    code === 'ERR_MODULE_NOT_FOUND' ||
    code === 'MODULE_NOT_FOUND' ||
    /Cannot find (package|module)|Could not resolve|Failed to (resolve|load url)/i.test(msg);
  return notFound && msg.includes(specifier);
}

export async function tryLoad<T>(loader: ModuleLoader, specifier: string): Promise<LoadOutcome<T>> {
  try {
    const mod = (await loader(specifier)) as T & { default?: T };
    return { ok: true, module: mod };
  } catch (e) {
    if (isMissing(e, specifier)) return { ok: false, missing: true, message: `${specifier} is not installed` };
    return { ok: false, missing: false, message: `${specifier} is installed but failed to load: ${firstLine(e)}` };
  }
}

export function unavailable(message: string, details?: Record<string, unknown>): SbmError {
  return new SbmError('BACKEND_UNAVAILABLE', message, details);
}
