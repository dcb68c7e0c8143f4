import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { getBackend, isSbmError } from '@sbm/core';
import { initBackend, requestedBackend, type ModuleLoader } from '@sbm/backend-node';

/** A loader that pretends only the listed optional packages exist (each maps to a fake module). */
function fakeLoader(present: Record<string, unknown>, broken: Record<string, string> = {}): ModuleLoader {
  return async (specifier) => {
    if (specifier in broken) throw new Error(broken[specifier]);
    if (specifier in present) return present[specifier];
    const e = new Error(`Cannot find package '${specifier}' imported from /x.js`) as Error & { code: string };
    e.code = 'ERR_MODULE_NOT_FOUND';
    throw e;
  };
}

const realLoader: ModuleLoader = (s) => import(/* @vite-ignore */ s);

/** Fake @tensorflow/tfjs-node: registers a 'tensorflow' backend (a CPU backend under that name), as the real one does. */
const fakeTfjsNode = {
  get registered() {
    if (!tf.findBackendFactory('tensorflow')) {
      tf.registerBackend('tensorflow', () => {
        // A fresh cpu backend instance: 'tensorflow' only has to initialise; selection is what is tested.
        const Cpu = (tf.engine().registry.cpu ?? tf.findBackend('cpu'))?.constructor as new () => tf.KernelBackend;
        return new Cpu();
      });
    }
    return true;
  },
};
const tfjsNodeLoader: ModuleLoader = async (s) => {
  if (s === '@tensorflow/tfjs-node') {
    void fakeTfjsNode.registered;
    return {};
  }
  return fakeLoader({})(s);
};

const env = process.env;
afterEach(async () => {
  delete env.SBM_BACKEND;
  if (tf.findBackendFactory('tensorflow')) tf.removeBackend('tensorflow');
  await tf.setBackend('cpu');
});

describe('backend selection (Node)', () => {
  it('automatic: skips missing tensorflow and absent webgpu, lands on wasm, and says why in one line', async () => {
    const lines: string[] = [];
    const b = await initBackend({ loader: fakeLoader({}, {}), log: (l) => lines.push(l), wasmThreads: 1 }).catch(
      (e: unknown) => e,
    );
    // With no packages at all even wasm is missing: automatic selection must fall through to cpu.
    expect(isSbmError(b)).toBe(false);
    expect((b as { name: string }).name).toBe('cpu');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sbm: backend cpu/);
    expect(lines[0]).toContain('tensorflow: tfjs-node-gpu is not installed');
    expect(lines[0]).toContain('webgpu: the npm package webgpu');
    expect(lines[0]).toContain('wasm: @tensorflow/tfjs-backend-wasm is not installed');
    expect(lines[0]).not.toContain('\n');
  });

  it('automatic with wasm installed: tensorflow and webgpu skipped, wasm chosen with training kernels', async () => {
    const wasmMod = await import('@tensorflow/tfjs-backend-wasm');
    const lines: string[] = [];
    const b = await initBackend({
      loader: fakeLoader({ '@tensorflow/tfjs-backend-wasm': wasmMod }),
      log: (l) => lines.push(l),
    });
    expect(b.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(b.capabilities.training).toBe(true);
    expect(lines[0]).toMatch(/^sbm: backend wasm \(\d threads?, SIMD/);
    expect(getBackend()?.name).toBe('wasm');
  });

  it('prefers tensorflow when tfjs-node loads (fake), before webgpu and wasm', async () => {
    const b = await initBackend({ loader: tfjsNodeLoader, log: false });
    expect(b.name).toBe('tensorflow');
    expect(tf.getBackend()).toBe('tensorflow');
    expect(b.reason).toContain('@tensorflow/tfjs-node');
    expect(b.reason).toContain('@tensorflow/tfjs-node-gpu is not installed');
  });

  it('webgpu is skipped in automatic selection on a software adapter and named in the reason', async () => {
    const fakeDawn = {
      create: () => ({
        requestAdapter: async () => ({
          info: { vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader driver' },
          limits: {},
          features: new Set<string>(),
          requestDevice: async () => ({}),
        }),
      }),
      globals: {},
    };
    const lines: string[] = [];
    const b = await initBackend({
      loader: fakeLoader({ webgpu: fakeDawn, '@tensorflow/tfjs-backend-webgpu': { WebGPUBackend: class {} } }),
      log: (l) => lines.push(l),
    });
    expect(b.name).toBe('cpu');
    expect(lines[0]).toContain('webgpu: only a software WebGPU adapter (google / swiftshader / SwiftShader driver)');
  });

  it('SBM_BACKEND picks the backend and the reason says so', async () => {
    env.SBM_BACKEND = 'cpu';
    const lines: string[] = [];
    const b = await initBackend({ loader: realLoader, log: (l) => lines.push(l) });
    expect(b.name).toBe('cpu');
    expect(lines).toEqual(['sbm: backend cpu (plain JavaScript, slowest): asked for by SBM_BACKEND=cpu']);
  });

  it('the option wins over SBM_BACKEND', async () => {
    env.SBM_BACKEND = 'tensorflow';
    const b = await initBackend({ backend: 'cpu', loader: realLoader, log: false });
    expect(b.name).toBe('cpu');
    expect(b.reason).toContain("option backend: 'cpu'");
  });

  it('SBM_BACKEND=tensorflow without tfjs-node gives BACKEND_UNAVAILABLE with the install line, no stack trace', async () => {
    env.SBM_BACKEND = 'tensorflow';
    // The real loader: @tensorflow/tfjs-node(-gpu) cannot be installed here (their install downloads libtensorflow).
    const err = await initBackend({ loader: realLoader, log: false }).catch((e: unknown) => e);
    expect(isSbmError(err, 'BACKEND_UNAVAILABLE')).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^tfjs-node-gpu is not installed: npm install @tensorflow\/tfjs-node-gpu \(needs CUDA 11\.2/);
    expect(msg).toContain('@tensorflow/tfjs-node for CPU');
    expect(msg).not.toMatch(/\n\s+at /);
  });

  it('a broken tfjs-node-gpu (installed, native part failing) is reported as such', async () => {
    const err = await initBackend({
      backend: 'tensorflow',
      loader: fakeLoader(
        {},
        { '@tensorflow/tfjs-node-gpu': 'libcudart.so.11.0: cannot open shared object file\n  at x' },
      ),
      log: false,
    }).catch((e: unknown) => e);
    expect(isSbmError(err, 'BACKEND_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain(
      '@tensorflow/tfjs-node-gpu is installed but failed to load: libcudart.so.11.0: cannot open shared object file',
    );
    expect((err as Error).message).not.toContain('  at x');
  });

  it('explicit webgpu without Dawn installed names the packages to install', async () => {
    const err = await initBackend({ backend: 'webgpu', loader: fakeLoader({}), log: false }).catch((e: unknown) => e);
    expect(isSbmError(err, 'BACKEND_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain('npm install webgpu @tensorflow/tfjs-backend-webgpu');
  });

  it('rejects unknown names from the option and from SBM_BACKEND', async () => {
    expect(() => requestedBackend('cuda')).toThrowError(
      /backend: expected one of "tensorflow", "webgpu", "wasm", "cpu", "auto", got "cuda"/,
    );
    env.SBM_BACKEND = 'gpu';
    const err = await initBackend({ log: false }).catch((e: unknown) => e);
    expect(isSbmError(err, 'UNKNOWN_NAME')).toBe(true);
    expect((err as Error).message).toContain('SBM_BACKEND: expected one of');
  });
});
