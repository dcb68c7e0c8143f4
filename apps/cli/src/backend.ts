import { initBackend, type NodeBackendName } from '@sbm/backend-node';
import type { Backend } from '@sbm/core';
import { backendNames, checkChoice } from './registries';

/** 'auto' and every registered backend (sbm's Node backends and any a plugin added), in selection order. */
export function backendChoices(): string[] {
  return ['auto', ...backendNames()];
}

/** Starts the tfjs backend (--backend, else SBM_BACKEND, else automatic) and prints its one-line reason on stderr. */
export async function startBackend(name: string | undefined, quiet = false): Promise<Backend> {
  if (name !== undefined) checkChoice('--backend', name, backendChoices());
  return initBackend({
    backend: name as NodeBackendName | 'auto' | undefined,
    log: quiet ? false : (line) => process.stderr.write(`${line}\n`),
  });
}
