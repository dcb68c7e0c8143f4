import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '@sbm/backend-node';

// Opt-in, as in the test harness: SBM_TEST_WEBGPU=1 and VK_ICD_FILENAMES naming a Vulkan ICD (e.g. SwiftShader's,
// /usr/lib/chromium/vk_swiftshader_icd.json from Debian's chromium package).
const icd = process.env.VK_ICD_FILENAMES;
const enabled = process.env.SBM_TEST_WEBGPU === '1' && !!icd && existsSync(icd);

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe.skipIf(!enabled)(
  'Node WebGPU through Dawn (needs SBM_TEST_WEBGPU=1 and a Vulkan ICD in VK_ICD_FILENAMES)',
  () => {
    it('automatic selection skips a SwiftShader adapter', async () => {
      const lines: string[] = [];
      const b = await initBackend({ log: (l) => lines.push(l), wasmThreads: 1 });
      expect(b.name).not.toBe('webgpu');
      expect(lines[0]).toMatch(/webgpu: only a software WebGPU adapter \(google \/ swiftshader/);
    });

    it('asked for by name it runs on SwiftShader and matches the closed form; dataSync says to use data()', async () => {
      const b = await initBackend({ backend: 'webgpu', log: false });
      expect(b.name).toBe('webgpu');
      expect(tf.getBackend()).toBe('webgpu');
      expect(b.capabilities.webgpu).toBe(true);
      expect(b.reason).toContain('software adapter google / swiftshader');
      const before = tf.memory().numTensors;
      // x = [1..6] as 2×3; x·xᵀ = [[14, 32], [32, 77]].
      const y = tf.tidy(() => {
        const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
        return tf.matMul(x, x, false, true);
      });
      // A result still on the GPU cannot be read synchronously: the message says what to do instead.
      const z = tf.tidy(() => tf.matMul(y, y));
      expect(() => z.dataSync()).toThrowError(/use await tensor.data\(\)/);
      expect(Array.from(await y.data())).toEqual([14, 32, 32, 77]);
      // Once read back, the values live on the CPU too (tfjs's small-tensor CPU forwarding reads them so).
      expect(Array.from(y.dataSync())).toEqual([14, 32, 32, 77]);
      tf.dispose([y, z]);
      expect(tf.memory().numTensors).toBe(before);
    });
  },
);
