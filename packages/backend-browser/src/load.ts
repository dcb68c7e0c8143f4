import { SbmError } from '@sbm/core';

/** Loads an optional package; injectable so tests can pretend a package is (not) installed. */
export type ModuleLoader = (specifier: string) => Promise<unknown>;

/*
 * Literal specifiers, so bundlers (Vite, esbuild, webpack) can see and split them; a missing optional peer then fails
 * at build time in the app that lacks it only if the app asks for that backend.
 */
export const defaultLoader: ModuleLoader = (specifier) => {
  switch (specifier) {
    case '@tensorflow/tfjs-backend-webgpu':
      return import('@tensorflow/tfjs-backend-webgpu');
    case '@tensorflow/tfjs-backend-wasm':
      return import('@tensorflow/tfjs-backend-wasm');
    case '@sbm/wasm-kernels':
      return import('@sbm/wasm-kernels');
    default:
      return Promise.reject(new Error(`Cannot find module '${specifier}'`));
  }
};

export function firstLine(e: unknown): string {
  const msg =
    e instanceof Error ? e.message : typeof e === 'object' && e && 'message' in e ? String(e.message) : String(e);
  return msg.split('\n')[0].trim();
}

export async function tryLoad<T>(
  loader: ModuleLoader,
  specifier: string,
): Promise<{ ok: true; module: T } | { ok: false; message: string }> {
  try {
    return { ok: true, module: (await loader(specifier)) as T };
  } catch (e) {
    const msg = firstLine(e);
    const missing = /Cannot find|Could not resolve|Failed to (resolve|fetch)|error loading dynamically imported/i.test(
      msg,
    );
    return {
      ok: false,
      message: missing
        ? `${specifier} is not installed (npm install ${specifier})`
        : `${specifier} failed to load: ${msg}`,
    };
  }
}

export function unavailable(message: string): SbmError {
  return new SbmError('BACKEND_UNAVAILABLE', message);
}
