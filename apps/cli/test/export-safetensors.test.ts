import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCheckpointStorage } from '@sbm/backend-node';
import { loadSbmModel, readSbmModelInfo } from '@sbm/interop';
import { float16BitsToFloat32, float32ToFloat16Bits } from '@sbm/safetensors';
import { loadCheckpoint } from '@sbm/training';
import { buildStaleDist, errorLines, moonsTrainArgs, sbm as run, type Result } from './helpers';

// `sbm export safetensors`: a checkpoint → one sbm model file (@sbm/interop's format), as a child process of the
// built CLI, on a tiny moons checkpoint trained here (MLP [16, 16], 30 steps).
const tmp = mkdtempSync(join(tmpdir(), 'sbm-cli-export-st-'));
const sbm = (args: string[]): Result => run(args, { cwd: tmp, timeout: 120_000 });
const ckpt = join(tmp, 'run');

beforeAll(() => {
  buildStaleDist();
  const small = join(tmp, 'small.json');
  writeFileSync(small, JSON.stringify({ model: { hidden: [16, 16] } }));
  const r = sbm(moonsTrainArgs(small, ckpt, 30, ['--sde', 'vp']));
  expect(r.code, r.stderr).toBe(0);
}, 300_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The checkpoint's weights by name (EMA copied in when `ema`), read as the CLI reads them. */
async function checkpointWeights(ema: boolean): Promise<{ step: number; weights: Map<string, Float32Array> }> {
  const { model, ema: avg, config, optimizerState } = await loadCheckpoint(new FileCheckpointStorage(), ckpt);
  try {
    if (ema) avg.copyTo(model);
    const weights = new Map<string, Float32Array>();
    for (const w of model.getWeights()) weights.set(w.name, (await w.tensor.data()) as Float32Array);
    return { step: config.step, weights };
  } finally {
    avg.dispose();
    model.dispose();
    tf.dispose([...Object.values(optimizerState.m), ...Object.values(optimizerState.v)]);
  }
}

async function fileWeights(path: string): Promise<Map<string, Float32Array>> {
  const { model } = loadSbmModel(new Uint8Array(readFileSync(path)));
  const out = new Map<string, Float32Array>();
  for (const w of model.getWeights()) out.set(w.name, (await w.tensor.data()) as Float32Array);
  model.dispose();
  return out;
}

/** One `sbm:` error line naming `flag`, exit code 2. */
function expectUsage(r: Result, flag: string, re: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = errorLines(r.stderr);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(flag);
  expect(lines[0]).toMatch(re);
}

describe('sbm export safetensors', () => {
  it('float32, EMA weights (the default): the checkpoint’s weights exactly, with its configs and step', async () => {
    await tf.setBackend('cpu');
    const out = join(tmp, 'ema-f32.safetensors');
    const r = sbm(['export', 'safetensors', '--ckpt', ckpt, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step 30, ema weights, \d+ tensors, float32\) → .*ema-f32\.safetensors \(\d+ bytes\)/);
    const info = readSbmModelInfo(new Uint8Array(readFileSync(out)));
    expect(info).toMatchObject({ step: 30, weights: 'ema', dtype: 'float32', dataRange: null });
    expect(info.sde.name).toBe('vp');
    expect(info.model.name).toBe('mlp');
    expect(JSON.parse(info.extra.training).batchSize).toBe(64);
    const [want, got] = [await checkpointWeights(true), await fileWeights(out)];
    expect([...got.keys()].sort()).toEqual([...want.weights.keys()].sort());
    for (const [name, v] of want.weights) expect(got.get(name), name).toEqual(v);
    // The raw weights differ from the EMA after 30 steps, so the comparison above could tell them apart.
    const raw = await checkpointWeights(false);
    expect([...raw.weights].some(([name, v]) => v.some((x, i) => x !== want.weights.get(name)![i]))).toBe(true);
  }, 60_000);

  it('--dtype float16 --weights model --force: replaces the file with raw weights rounded to half, ~half the size', async () => {
    await tf.setBackend('cpu');
    // The float32 EMA file of the test above: same tensors and header size as a float32 raw-weights file.
    const out = join(tmp, 'ema-f32.safetensors');
    const f32Size = statSync(out).size;
    const r = sbm([
      'export',
      'safetensors',
      '--ckpt',
      ckpt,
      '--out',
      out,
      '--dtype',
      'float16',
      '--weights',
      'model',
      '--force',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const info = readSbmModelInfo(new Uint8Array(readFileSync(out)));
    expect(info).toMatchObject({ weights: 'model', dtype: 'float16' });
    const want = await checkpointWeights(false);
    const got = await fileWeights(out);
    for (const [name, v] of want.weights) {
      const stored = info.tensors[name].dtype;
      const g = got.get(name)!;
      for (let i = 0; i < v.length; i++) {
        expect(g[i]).toBe(stored === 'F16' ? float16BitsToFloat32(float32ToFloat16Bits(v[i])) : v[i]);
      }
    }
    const ratio = statSync(out).size / f32Size;
    // Headers (configs, names) are the same size in both; with ~1.5k weights they are a large part of the file.
    expect(ratio).toBeLessThan(0.75);
    expect(ratio).toBeGreaterThan(0.5);
  }, 60_000);

  it('refuses an existing --out without --force, an unknown --dtype, and --dtype on score-sde', () => {
    const out = join(tmp, 'ema-f32.safetensors');
    expect(existsSync(out)).toBe(true);
    const before = readFileSync(out);
    expectUsage(sbm(['export', 'safetensors', '--ckpt', ckpt, '--out', out]), '--out', /exists; pass --force/);
    expect(readFileSync(out)).toEqual(before);
    const bad = sbm(['export', 'safetensors', '--ckpt', ckpt, '--out', join(tmp, 'y.safetensors'), '--dtype', 'f8']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--dtype/);
    expectUsage(
      sbm(['export', 'score-sde', '--ckpt', ckpt, '--out', join(tmp, 'z.safetensors'), '--dtype', 'float16']),
      '--dtype',
      /export safetensors only/,
    );
    expect(existsSync(join(tmp, 'y.safetensors')) || existsSync(join(tmp, 'z.safetensors'))).toBe(false);
  }, 60_000);
});
