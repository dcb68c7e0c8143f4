import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SbmError } from '@sbm/core';
import { defaultLoader, tryLoad, unavailable, type ModuleLoader } from './optional-module';

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

const NO_ADAPTER =
  "no WebGPU adapter: Dawn found no Vulkan/Metal/D3D12 device. On Linux install the GPU vendor's Vulkan driver " +
  '(and libvulkan1); for a CPU emulation set VK_ICD_FILENAMES to a SwiftShader or lavapipe ICD file';

/**
 * The Vulkan driver manifests (ICD .json files) the Linux Vulkan loader would read, in its search order:
 * VK_DRIVER_FILES / VK_ICD_FILENAMES replace the search; otherwise the XDG config and data folders and /etc.
 * None means Dawn can find no adapter, and asking it would only print the loader's warnings.
 */
export function vulkanDriverFiles(env: Record<string, string | undefined> = process.env): string[] {
  const list = (v: string | undefined) => (v ?? '').split(':').filter(Boolean);
  const explicit = list(env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES);
  if (explicit.length) return explicit.filter((f) => existsSync(f));
  const home = env.HOME ?? homedir();
  const dirs = [
    env.XDG_CONFIG_HOME ?? join(home, '.config'),
    ...list(env.XDG_CONFIG_DIRS ?? '/etc/xdg'),
    '/etc',
    env.XDG_DATA_HOME ?? join(home, '.local', 'share'),
    ...list(env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share'),
  ].map((d) => join(d, 'vulkan', 'icd.d'));
  const found = list(env.VK_ADD_DRIVER_FILES).filter((f) => existsSync(f));
  for (const d of dirs) {
    try {
      for (const f of readdirSync(d)) if (f.endsWith('.json')) found.push(join(d, f));
    } catch {
      // no such folder
    }
  }
  return found;
}

// Runs in a child process: Dawn and the Vulkan loader write their warnings ("Couldn't load Vulkan",
// "XDG_RUNTIME_DIR is invalid", "vkCreateInstance: Found no drivers") straight to fd 2, which the child's is not.
const PROBE = `
const { create } = await import(process.argv[1]);
const a = await create([]).requestAdapter({ powerPreference: 'high-performance' });
const i = a?.info ?? {};
const d = a && { info: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
  isFallbackAdapter: i.isFallbackAdapter }, isFallbackAdapter: a.isFallbackAdapter };
process.stdout.write(JSON.stringify({ adapter: d ?? null }));
process.exit(0);
`;

/** Asks Dawn for an adapter in a child process with its stderr discarded; undefined when the probe itself fails. */
function probeAdapterQuietly(): Promise<AdapterDescription | null | undefined> {
  let entry: string;
  try {
    entry = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--input-type=module', '-e', PROBE, entry],
      { timeout: 20_000, encoding: 'utf8' },
      (err, stdout) => {
        if (err) return resolve(undefined);
        try {
          const r = JSON.parse(stdout) as { adapter: GpuAdapterLike | null };
          resolve(r.adapter ? describeAdapter(r.adapter) : null);
        } catch {
          resolve(undefined);
        }
      },
    );
    child.stderr?.resume();
  });
}

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
  // Automatic selection must not print anything for a backend it does not choose; Dawn in this process would (see
  // PROBE), so the adapter is first looked at from a child process. Asked for by name, warnings are welcome.
  if (!explicit && !gpu && loader === defaultLoader) {
    if (process.platform === 'linux' && vulkanDriverFiles().length === 0) {
      throw unavailable(`${NO_ADAPTER} (no Vulkan driver manifest in VK_ICD_FILENAMES or the vulkan/icd.d folders)`);
    }
    const probed = await probeAdapterQuietly();
    if (probed === null) throw unavailable(NO_ADAPTER);
    if (probed?.software) {
      throw unavailable(
        `only a software WebGPU adapter (${adapterLabel(probed)}), slower than wasm; use it anyway with SBM_BACKEND=webgpu`,
      );
    }
  }
  const { create, globals } = dawn.module;
  gpu ??= create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw unavailable(NO_ADAPTER);
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
      // Values still on the CPU (small tensors tfjs forwards to its CPU kernels, e.g. Tile) read as before.
      const b = backend as unknown as {
        readSync: (id: object) => unknown;
        tensorMap: { get: (id: object) => { values?: unknown } | undefined };
      };
      const readCpuResident = b.readSync.bind(backend);
      b.readSync = (id: object) => {
        if (b.tensorMap.get(id)?.values != null) return readCpuResident(id);
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
