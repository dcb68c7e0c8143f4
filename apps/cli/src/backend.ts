import { initBackend, type NodeBackendName } from '@sbm/backend-node';
import type { Backend } from '@sbm/core';
import { UsageError } from './errors';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/** Starts the tfjs backend (--backend, else SBM_BACKEND, else automatic) and prints its one-line reason on stderr. */
export async function startBackend(name: string | undefined, quiet = false): Promise<Backend> {
  if (name !== undefined && !BACKEND_CHOICES.includes(name)) {
    throw new UsageError(`--backend: expected one of ${BACKEND_CHOICES.join(', ')}, got "${name}"`);
  }
  return initBackend({
    backend: name as NodeBackendName | 'auto' | undefined,
    log: quiet ? false : (line) => process.stderr.write(`${line}\n`),
  });
}
