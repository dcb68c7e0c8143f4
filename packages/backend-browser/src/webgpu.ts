import * as tf from '@tensorflow/tfjs';
import { tryLoad, unavailable, type ModuleLoader } from './load';

interface AdapterLike {
  info?: Partial<Record<'vendor' | 'architecture' | 'device' | 'description', string>> & {
    isFallbackAdapter?: boolean;
  };
  isFallbackAdapter?: boolean;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|software|warp|microsoft basic render/i;

export interface GpuDescription {
  label: string;
  software: boolean;
}

function describe(a: AdapterLike): GpuDescription {
  const i = a.info ?? {};
  const label = [i.vendor, i.architecture, i.description || i.device].filter(Boolean).join(' / ') || 'unnamed adapter';
  return { label, software: i.isFallbackAdapter === true || a.isFallbackAdapter === true || SOFTWARE.test(label) };
}

/** WebGPU through tfjs-backend-webgpu. Automatic selection skips software adapters (slower than wasm). */
export async function initWebgpu(loader: ModuleLoader, explicit: boolean): Promise<GpuDescription> {
  const gpu = (
    globalThis.navigator as { gpu?: { requestAdapter(o?: unknown): Promise<AdapterLike | null> } } | undefined
  )?.gpu;
  if (!gpu) {
    throw unavailable(
      'this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome/Edge, or Safari/Firefox with WebGPU enabled; a secure context (https or localhost) is required',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw unavailable('WebGPU is present but offers no adapter (GPU blocklisted or disabled)');
  const d = describe(adapter);
  if (d.software && !explicit) {
    throw unavailable(
      `only a software WebGPU adapter (${d.label}), slower than wasm; ask for 'webgpu' to use it anyway`,
    );
  }
  const pkg = await tryLoad(loader, '@tensorflow/tfjs-backend-webgpu');
  if (!pkg.ok) throw unavailable(pkg.message);
  if (!(await tf.setBackend('webgpu'))) throw unavailable(`tfjs could not start WebGPU on ${d.label}`);
  await tf.ready();
  return d;
}
