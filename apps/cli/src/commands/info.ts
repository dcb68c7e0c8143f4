import * as tf from '@tensorflow/tfjs';
import { listBackends } from '@sbm/core';
import { initBackend, registerNodeBackends } from '@sbm/backend-node';
import { versionOf } from '../util';

const SBM_PACKAGES = [
  'core',
  'sde',
  'models',
  'samplers',
  'training',
  'likelihood',
  'datasets',
  'metrics',
  'backend-node',
];

export async function infoCommand(o: { json: boolean; backend?: string; cliVersion: string }): Promise<number> {
  registerNodeBackends();
  const registered = listBackends().map((b) => b.name);
  let reason = '';
  let chosen = '';
  let error: string | undefined;
  try {
    const b = await initBackend({
      backend: o.backend as never,
      log: (line) => {
        reason = line;
      },
    });
    chosen = b.name;
  } catch (e) {
    error = e instanceof Error ? e.message.split('\n')[0] : String(e);
  }
  const versions: Record<string, string> = { '@sbm/cli': o.cliVersion };
  for (const p of SBM_PACKAGES) versions[`@sbm/${p}`] = versionOf(`@sbm/${p}`);
  versions['@tensorflow/tfjs'] = tf.version.tfjs;
  for (const p of [
    '@tensorflow/tfjs-backend-wasm',
    '@tensorflow/tfjs-node',
    '@tensorflow/tfjs-node-gpu',
    '@tensorflow/tfjs-backend-webgpu',
  ]) {
    versions[p] = versionOf(p);
  }
  versions.node = process.versions.node;
  const info = {
    backends: registered,
    chosen,
    reason,
    ...(error ? { error } : {}),
    env: { SBM_BACKEND: process.env.SBM_BACKEND ?? null, SBM_WASM_THREADS: process.env.SBM_WASM_THREADS ?? null },
    versions,
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(info) + '\n');
  } else {
    const lines = [
      `backends (in order of preference): ${registered.join(', ')}`,
      error ? `chosen: none — ${error}` : `chosen: ${chosen}`,
      ...(reason ? [`why: ${reason.replace(/^sbm: backend /, '')}`] : []),
      `SBM_BACKEND=${info.env.SBM_BACKEND ?? '(unset)'}  SBM_WASM_THREADS=${info.env.SBM_WASM_THREADS ?? '(unset)'}`,
      'versions:',
      ...Object.entries(versions).map(([k, v]) => `  ${k.padEnd(32)} ${v}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  return error ? 2 : 0;
}
