import * as tf from '@tensorflow/tfjs';
import { tryLoad, unavailable, type ModuleLoader } from './optional-module';

export const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
export const TFJS_NODE = '@tensorflow/tfjs-node';

export interface TensorflowInfo {
  /** The package that provided the 'tensorflow' backend. */
  pkg: typeof TFJS_NODE_GPU | typeof TFJS_NODE;
  /** Notes about the packages tried before it (e.g. the GPU build failing to load). */
  notes: string[];
}

const INSTALL_HINT =
  `npm install ${TFJS_NODE_GPU} (needs CUDA 11.2 and cuDNN 8.1; or ${TFJS_NODE} for CPU). ` +
  'Both download libtensorflow while installing, so the install needs network access';

/**
 * Loads libtensorflow through tfjs-node-gpu, then tfjs-node, and activates tfjs's 'tensorflow' backend. The package
 * must share our @tensorflow/tfjs engine: a second copy of tfjs-core would register the backend where we cannot see it.
 */
export async function initTensorflow(loader: ModuleLoader): Promise<TensorflowInfo> {
  const notes: string[] = [];
  for (const pkg of [TFJS_NODE_GPU, TFJS_NODE] as const) {
    const loaded = await tryLoad(loader, pkg);
    if (!loaded.ok) {
      notes.push(loaded.missing ? `${pkg} is not installed` : loaded.message);
      continue;
    }
    if (!tf.findBackendFactory('tensorflow')) {
      notes.push(
        `${pkg} loaded but registered 'tensorflow' with another copy of @tensorflow/tfjs-core ` +
          '(versions differ: align them, see `npm ls @tensorflow/tfjs-core`)',
      );
      continue;
    }
    if (!(await tf.setBackend('tensorflow'))) {
      notes.push(`${pkg} loaded but the 'tensorflow' backend failed to initialise (see the warning above)`);
      continue;
    }
    await tf.ready();
    return { pkg, notes };
  }
  const nothingInstalled = notes.every((n) => n.endsWith('is not installed'));
  throw unavailable(
    nothingInstalled
      ? `tfjs-node-gpu is not installed: ${INSTALL_HINT}`
      : `the 'tensorflow' backend could not load: ${notes.join('; ')}. Fix: ${INSTALL_HINT}`,
    { attempts: notes },
  );
}
