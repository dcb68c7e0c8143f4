import * as tf from '@tensorflow/tfjs';
import { SbmError } from '@sbm/core';
import { tryLoad, unavailable, type ModuleLoader } from './optional-module';

/** What Dawn says about the adapter it picked. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations of WebGPU (SwiftShader, lavapipe/llvmpipe, WARP). */
  software: boolean;
}

interface GpuAdapterLike {
  info?: Partial<Record<'vendor' | 'architecture' | 'device' | 'description', string>> & {
    isFallbackAdapter?: boolean;
  };
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
  features: { has(name: string): boolean };
  requestDevice(descriptor?: unknown): Promise<unknown>;
}

interface GpuLike {
  requestAdapter(options?: unknown): Promise<GpuAdapterLike | null>;
}

interface DawnPackage {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

interface WebgpuBackendPackage {
  WebGPUBackend: new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|software|warp|microsoft basic render/i;

export function describeAdapter(adapter: GpuAdapterLike): AdapterDescription {
  const info = adapter.info ?? {};
  const d = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
  };
  const software =
    info.isFallbackAdapter === true ||
    adapter.isFallbackAdapter === true ||
    SOFTWARE.test(`${d.vendor} ${d.architecture} ${d.device} ${d.description}`);
  return { ...d, software };
}

export function adapterLabel(a: AdapterDescription): string {
  return [a.vendor, a.architecture, a.description || a.device].filter(Boolean).join(' / ') || 'unnamed adapter';
}

const INSTALL = 'npm install webgpu @tensorflow/tfjs-backend-webgpu';
let gpu: GpuLike | undefined;

/**
 * Activates tfjs's WebGPU backend on Dawn (npm `webgpu`). In automatic selection only a hardware adapter counts:
 * on SwiftShader WebGPU is slower than wasm. Asked for by name, any adapter is used (how the tests reach SwiftShader).
 */
export async function initWebgpu(loader: ModuleLoader, explicit: boolean): Promise<AdapterDescription> {
  const dawn = await tryLoad<DawnPackage>(loader, 'webgpu');
  if (!dawn.ok) {
    throw unavailable(
      dawn.missing
        ? `the npm package webgpu (Dawn for Node) is not installed: ${INSTALL}`
        : `${dawn.message} (${INSTALL})`,
    );
  }
  const backendPkg = await tryLoad<WebgpuBackendPackage>(loader, '@tensorflow/tfjs-backend-webgpu');
  if (!backendPkg.ok) {
    throw unavailable(
      backendPkg.missing
        ? `@tensorflow/tfjs-backend-webgpu is not installed: npm install @tensorflow/tfjs-backend-webgpu@^4.22.0`
        : backendPkg.message,
    );
  }
  const { create, globals } = dawn.module;
  gpu ??= create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw unavailable(
      "no WebGPU adapter: Dawn found no Vulkan/Metal/D3D12 device. On Linux install the GPU vendor's Vulkan driver " +
        '(and libvulkan1); for a CPU emulation set VK_ICD_FILENAMES to a SwiftShader or lavapipe ICD file',
    );
  }
  const described = describeAdapter(adapter);
  if (described.software && !explicit) {
    throw unavailable(
      `only a software WebGPU adapter (${adapterLabel(described)}), slower than wasm; use it anyway with SBM_BACKEND=webgpu`,
    );
  }

  // tfjs-backend-webgpu reads WebGPU's global enums (GPUBufferUsage, ...) and navigator.gpu.
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals)) if (!(k in g)) g[k] = v;
  if (typeof g.navigator !== 'object' || g.navigator === null) g.navigator = {};
  const nav = g.navigator as Record<string, unknown>;
  if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });

  if (!tf.engine().registry.webgpu) {
    // The same limits tfjs-backend-webgpu asks for in its own factory, so its kernels size their dispatches alike.
    const names = [
      'maxComputeWorkgroupStorageSize',
      'maxComputeWorkgroupsPerDimension',
      'maxStorageBufferBindingSize',
      'maxBufferSize',
      'maxComputeWorkgroupSizeX',
      'maxComputeInvocationsPerWorkgroup',
    ];
    const requiredLimits = Object.fromEntries(names.map((n) => [n, adapter.limits[n]]));
    const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    const backend = new backendPkg.module.WebGPUBackend(device, adapter.info);
    if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined') {
      // tfjs-backend-webgpu reads synchronously by drawing into an OffscreenCanvas, which Node lacks; say so plainly
      // instead of a ReferenceError deep inside tfjs.
      (backend as unknown as { readSync: () => never }).readSync = () => {
        throw new SbmError(
          'UNSUPPORTED',
          'dataSync()/arraySync() cannot read WebGPU tensors in Node (no synchronous GPU readback): use await tensor.data()',
        );
      };
    }
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => backend, 3);
  }
  if (!(await tf.setBackend('webgpu'))) {
    throw unavailable(`the WebGPU backend failed to initialise on ${adapterLabel(described)} (see the warning above)`);
  }
  await tf.ready();
  return described;
}
