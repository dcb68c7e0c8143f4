import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, encode } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indicesArg, intRangeArg, rangeArg } from '../src/commands/inverse-commands';
import { testSetFor, validateForShape, validateInverseFlags, type InverseCliOptions } from '../src/commands/inverse';
import { UsageError } from '../src/errors';
import {
  buildStaleDist,
  Child,
  errorLines,
  fineProgressEnv,
  newest,
  pool,
  root,
  sbmAsync,
  type Result,
} from './helpers';

// Issue 14 item 6: sbm inpaint | colorize | superres | cs | ct | mri | guided. Plumbing only — each command once on
// two tiny inputs with a few steps of an almost untrained ScoreNet; the quality figures come from the bench.
const tmp = mkdtempSync(join(tmpdir(), 'sbm-cli-inverse-'));
const gray = join(tmp, 'run-mnist');
const color = join(tmp, 'run-colored');
const SIZE = 28;
const PAD = 2;

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const base: InverseCliOptions = { ckpt: 'x', seed: 0, ema: true, out: 'o.png', samplesPerInput: 1 };

describe('flag parsing (in-process)', () => {
  it('parses indices, ranges and integer ranges, naming the flag on bad values', () => {
    expect(indicesArg('0, 3,2')).toEqual([0, 3, 2]);
    expect(indicesArg('5', [1])).toEqual([1, 5]);
    expect(() => indicesArg('1,-2')).toThrow(/^--indices: expected comma-separated integers ≥ 0/);
    expect(() => indicesArg('1,1')).toThrow(/--indices: index 1 is given twice/);
    expect(rangeArg('--ratio', 0, 1)('0.25')).toBe(0.25);
    expect(() => rangeArg('--ratio', 0, 1)('1.5')).toThrow(/^--ratio: expected a number in \[0, 1\], got "1.5"/);
    expect(intRangeArg('--label', 0, 9)('9')).toBe(9);
    expect(() => intRangeArg('--label', 0, 9)('10')).toThrow(UsageError);
    expect(() => intRangeArg('--label', 0, 9)('3.5')).toThrow(/^--label: expected an integer in \[0, 9\]/);
  });

  it('validates before anything loads: one input source, known masks, settings the method takes', () => {
    expect(validateInverseFlags('inpaint', base)).toEqual({ method: 'projection' });
    expect(validateInverseFlags('ct', base)).toEqual({ method: 'lambda-projection' });
    const bad: [string, Partial<InverseCliOptions>, RegExp][] = [
      ['inpaint', { mask: 'circle' }, /^--mask: expected one of center-box, random, .* or a \.png file, got "circle"/],
      ['inpaint', { mask: 'center-box', ratio: 0.5 }, /^--ratio: only with --mask random/],
      ['inpaint', { indices: [1], images: ['a.png'] }, /^--indices and --images: expected one input source/],
      ['inpaint', { indices: [10_000] }, /^--indices: expected indices below 10000/],
      ['inpaint', { out: 'grid.jpg' }, /^--out: expected a \.png file/],
      ['inpaint', { zeta: 0.5 }, /^--zeta: method projection has no zeta setting/],
      ['superres', { method: 'guidance' }, /^--method: guidance takes no measurement/],
      ['cs', { ratio: 0 }, /^--ratio: expected a number in \(0, 1\]/],
      ['colorize', { posteriorMean: true }, /^--posterior-mean: expected --samples-per-input of at least 2 .* got 1/],
    ];
    for (const [task, o, re] of bad) {
      expect(() => validateInverseFlags(task as 'inpaint', { ...base, ...o }), `${task} ${JSON.stringify(o)}`).toThrow(
        re,
      );
    }
  });

  it('checks what depends on the model: factor divides the size, colorize needs RGB, the data set fits', () => {
    expect(() => validateForShape('superres', { ...base, factor: 7 }, [28, 28, 1])).not.toThrow();
    expect(() => validateForShape('superres', { ...base, factor: 5 }, [28, 28, 1])).toThrow(
      /^--factor: expected a divisor of the image size 28×28 \(2, 4, 7, 14, 28\), got 5/,
    );
    expect(() => validateForShape('colorize', base, [28, 28, 1])).toThrow(/^--ckpt: colorize needs an RGB model/);
    expect(() => validateForShape('inpaint', base, [32, 32, 3])).toThrow(
      /^--n: the test sets are MNIST's \[28, 28, 1\] and colored-mnist's \[28, 28, 3\] images, the checkpoint's are \[32, 32, 3\]: pass --images$/,
    );
    expect(() => validateForShape('inpaint', { ...base, images: ['a.png'] }, [32, 32, 3])).not.toThrow();
    // RGB 28×28 models read coloured MNIST for every task, gray ones MNIST.
    expect(testSetFor([28, 28, 3])).toBe('colored-mnist:test');
    expect(testSetFor([28, 28, 1])).toBe('mnist:test');
    expect(() => validateForShape('superres', base, [28, 28, 3])).not.toThrow();
  });
});

describe('the commands as child processes', () => {
  beforeAll(async () => {
    buildStaleDist();
    // sbm guided imports @sbm/mnist-eval/node at run time: not (yet) a dependency in apps/cli/package.json, so the
    // shared build helper does not see it.
    const evalDir = join(root, 'packages', 'mnist-eval');
    const dist = join(evalDir, 'dist', 'node.js');
    if (!existsSync(dist) || newest(join(evalDir, 'src')) > statSync(dist).mtimeMs) {
      execFileSync('npx', ['tsup'], { cwd: evalDir, stdio: 'pipe', timeout: 180_000 });
    }
    // The smallest ScoreNet the GroupNorm groups allow (32 channels at every resolution), 3 steps: weights that run, not learn.
    const cfg = join(tmp, 'tiny.json');
    writeFileSync(cfg, JSON.stringify({ model: { channels: [32, 32, 32, 32], embedDim: 16 } }));
    const train = (data: string, out: string) => [
      'train',
      '--data',
      data,
      '--sde',
      'tutorial-ve',
      '--model',
      'scorenet',
      '--config',
      cfg,
      '--n-data',
      '16',
      '--batch',
      '8',
      '--steps',
      '3',
      '--warmup',
      '1',
      '--sample-every',
      '0',
      '--out',
      out,
    ];
    const rs = await pool([
      () => sbmAsync(train('mnist', gray), { cwd: tmp, timeout: 120_000 }),
      () => sbmAsync(train('colored-mnist', color), { cwd: tmp, timeout: 120_000 }),
    ]);
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
  }, 300_000);

  function run(args: string[]): Promise<Result> {
    return sbmAsync(args, { cwd: tmp, timeout: 120_000 });
  }

  /** One line on stderr naming the flag, exit 2, no output written. */
  function expectUsage(r: Result, re: RegExp, out: string): void {
    expect(r.code, r.stderr).toBe(2);
    const lines = errorLines(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(re);
    expect(existsSync(out)).toBe(false);
  }

  describe('bad flags exit 2 with one line naming the flag (before the backend starts)', () => {
    it('unknown --mask, --views 0, --factor not dividing 28, negative --scale, --label 10', async () => {
      const out = join(tmp, 'never.png');
      const cases: [string[], RegExp][] = [
        [['inpaint', '--ckpt', gray, '--mask', 'circle'], /^sbm: --mask: expected one of center-box.*got "circle"$/],
        [['ct', '--ckpt', gray, '--views', '0'], /^sbm: --views: expected an integer ≥ 1, got "0"$/],
        [['superres', '--ckpt', gray, '--factor', '5'], /^sbm: --factor: expected a divisor of the image size 28×28/],
        [
          ['guided', '--ckpt', gray, '--label', '7', '--scale', '-1'],
          /^sbm: --scale: expected a number ≥ 0, got "-1"$/,
        ],
        [['guided', '--ckpt', gray, '--label', '10'], /^sbm: --label: expected an integer in \[0, 9\], got "10"$/],
      ];
      const rs = await pool(
        cases.map(
          ([args]) =>
            () =>
              run([...args, '--out', out]),
        ),
      );
      rs.forEach((r, i) => {
        expectUsage(r, cases[i][1], out);
        // Refused before the backend started: no backend report line.
        expect(r.stderr).not.toMatch(/^sbm: backend /m);
      });
    }, 60_000);
  });

  const readPng = (p: string) => decode(readFileSync(p));

  interface Metrics {
    command: string;
    seed: number;
    method: string;
    nfe: number;
    ms: number;
    samplerOptions: Record<string, unknown>;
    inputs: {
      index?: number;
      psnr: number[];
      ssim: number[];
      residual: number[];
      posteriorMean?: { psnr: number; ssim: number; residual: number };
      baselines: Record<string, unknown>;
    }[];
    mean: {
      psnr: number;
      ssim: number;
      residual: number;
      posteriorMean?: { psnr: number; ssim: number; residual: number };
      baselines: Record<string, { psnr: number }>;
    };
  }

  describe('each command on two inputs with a few steps', () => {
    it('inpaint (projection): the grid and JSON are written, and the known pixels of the result are the truth', async () => {
      // Left half known (white), through the PNG-mask path.
      const maskFile = join(tmp, 'left.png');
      const m = new Uint8Array(SIZE * SIZE).map((_, i) => (i % SIZE < SIZE / 2 ? 255 : 0));
      writeFileSync(maskFile, encode({ width: SIZE, height: SIZE, data: m, channels: 1, depth: 8 }));
      const out = join(tmp, 'inpaint.png');
      const json = join(tmp, 'inpaint.json');
      const r = await run([
        'inpaint',
        '--ckpt',
        gray,
        '--indices',
        '3,5',
        '--mask',
        maskFile,
        '--steps',
        '3',
        '--samples-per-input',
        '2',
        '--out',
        out,
        '--json',
        json,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(readFileSync(json, 'utf8')) as Metrics;
      expect(s).toMatchObject({ command: 'inpaint', method: 'projection', seed: 0 });
      expect(s.inputs.map((i) => i.index)).toEqual([3, 5]);
      for (const i of s.inputs) {
        expect(i.psnr).toHaveLength(2);
        expect(i.ssim).toHaveLength(2);
        // Noise-free known pixels are replaced by the measurement itself (α = 1 for the tutorial VE SDE).
        for (const res of i.residual) expect(res).toBeLessThan(1e-3);
      }
      expect(s.nfe).toBeGreaterThan(0);
      // 2 rows × (truth, measurement, 2 reconstructions).
      const png = readPng(out);
      expect(png.width).toBe(4 * (SIZE + PAD) + PAD);
      expect(png.height).toBe(2 * (SIZE + PAD) + PAD);
      const px = (row: number, col: number, y: number, x: number) =>
        png.data[(PAD + row * (SIZE + PAD) + y) * png.width + PAD + col * (SIZE + PAD) + x];
      let known = 0;
      let unknownDiff = 0;
      for (let row = 0; row < 2; row++) {
        for (let y = 0; y < SIZE; y++) {
          for (let x = 0; x < SIZE; x++) {
            for (const col of [2, 3]) {
              if (x < SIZE / 2) {
                expect(Math.abs(px(row, col, y, x) - px(row, 0, y, x))).toBeLessThanOrEqual(1);
                known++;
              } else if (px(row, col, y, x) !== px(row, 0, y, x)) unknownDiff++;
            }
          }
        }
      }
      expect(known).toBe(2 * 2 * SIZE * (SIZE / 2));
      // Control: the unknown half was sampled, not copied from the truth.
      expect(unknownDiff).toBeGreaterThan(100);
    }, 60_000);

    it('colorize, superres, cs, ct and mri write a grid and parseable metrics', async () => {
      const common = ['--n', '2', '--steps', '2'];
      const jobs: { name: string; args: string[]; cols: number; channels: number }[] = [
        // colorize with 2 reconstructions per input and their posterior mean: truth, gray, 2 samples, mean.
        {
          name: 'colorize',
          args: [
            'colorize',
            '--ckpt',
            color,
            ...common,
            '--samples-per-input',
            '2',
            '--posterior-mean',
            '--denoise-to-zero',
          ],
          cols: 5,
          channels: 3,
        },
        { name: 'superres', args: ['superres', '--ckpt', gray, ...common, '--factor', '4'], cols: 3, channels: 1 },
        {
          name: 'cs',
          args: ['cs', '--ckpt', gray, ...common, '--ratio', '0.25', '--noise-std', '0.01'],
          cols: 3,
          channels: 1,
        },
        { name: 'ct', args: ['ct', '--ckpt', gray, ...common, '--views', '8'], cols: 3, channels: 1 },
        { name: 'mri', args: ['mri', '--ckpt', gray, ...common, '--acceleration', '4'], cols: 3, channels: 1 },
      ];
      const rs = await pool(
        jobs.map(
          (j) => () => run([...j.args, '--out', join(tmp, `${j.name}.png`), '--json', join(tmp, `${j.name}.json`)]),
        ),
      );
      rs.forEach((r, i) => {
        const j = jobs[i];
        expect(r.code, `${j.name}: ${r.stderr}`).toBe(0);
        const s = JSON.parse(readFileSync(join(tmp, `${j.name}.json`), 'utf8')) as Metrics;
        expect(s.command).toBe(j.name);
        expect(s.inputs).toHaveLength(2);
        for (const inp of s.inputs) {
          expect(inp.psnr.every(Number.isFinite), j.name).toBe(true);
          expect(
            inp.ssim.every((v) => v <= 1),
            j.name,
          ).toBe(true);
          expect(
            inp.residual.every((v) => Number.isFinite(v) && v >= 0),
            j.name,
          ).toBe(true);
        }
        for (const b of Object.values(s.mean.baselines)) expect(Number.isFinite(b.psnr), j.name).toBe(true);
        const png = readPng(join(tmp, `${j.name}.png`));
        expect(png.width, j.name).toBe(j.cols * (SIZE + PAD) + PAD);
        expect(png.channels, j.name).toBe(j.channels);
        if (j.name === 'colorize') {
          // The last column is the pixelwise mean of the two reconstructions (8-bit rounding: within 1).
          const at = (row: number, col: number, y: number, x: number, c: number) =>
            png.data[((PAD + row * (SIZE + PAD) + y) * png.width + PAD + col * (SIZE + PAD) + x) * 3 + c];
          let worst = 0;
          let differ = 0;
          for (let row = 0; row < 2; row++) {
            for (let y = 0; y < SIZE; y++) {
              for (let x = 0; x < SIZE; x++) {
                for (let c = 0; c < 3; c++) {
                  const [a, b, m] = [at(row, 2, y, x, c), at(row, 3, y, x, c), at(row, 4, y, x, c)];
                  if (a !== b) differ++;
                  // Clipping to [0, 255] happens per image, after the mean: a clipped sample pulls the bound.
                  if (a > 0 && a < 255 && b > 0 && b < 255) worst = Math.max(worst, Math.abs(m - (a + b) / 2));
                }
              }
            }
          }
          expect(differ, 'the two reconstructions differ').toBeGreaterThan(100);
          expect(worst).toBeLessThanOrEqual(1);
          for (const inp of s.inputs) {
            expect(inp.posteriorMean, 'per-input posteriorMean').toBeDefined();
            expect(Number.isFinite(inp.posteriorMean!.psnr)).toBe(true);
            expect(inp.posteriorMean!.ssim).toBeLessThanOrEqual(1);
            // Projection keeps A x = y in every sample, so in their mean too.
            expect(inp.posteriorMean!.residual).toBeLessThan(1e-3);
          }
          expect(s.mean.posteriorMean).toBeDefined();
          expect(s.samplerOptions).toEqual({ steps: 2, denoiseToZero: true });
        }
      });
    }, 60_000);
  });
  it('guided: class-conditional samples, the clean classifier agreement in the JSON', async () => {
    const out = join(tmp, 'guided.png');
    const json = join(tmp, 'guided.json');
    const r = await run([
      'guided',
      '--ckpt',
      gray,
      '--label',
      '7',
      '--n',
      '3',
      '--steps',
      '2',
      '--out',
      out,
      '--json',
      json,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(readFileSync(json, 'utf8')) as {
      label: number;
      n: number;
      agreement: number;
      predicted: number[];
      nfe: number;
    };
    expect(s).toMatchObject({ label: 7, n: 3 });
    expect(s.predicted).toHaveLength(10);
    expect(s.predicted.reduce((a, b) => a + b, 0)).toBe(3);
    // agreement is the share of the 3 samples the clean classifier calls 7.
    expect(s.agreement).toBe(s.predicted[7] / 3);
    expect(s.nfe).toBeGreaterThan(0);
    expect(readPng(out).width).toBe(2 * (SIZE + PAD) + PAD);
  }, 60_000);

  it('SIGINT while sampling: exit 130 and neither the grid nor the JSON is written', async () => {
    const out = join(tmp, 'stopped.png');
    const json = join(tmp, 'stopped.json');
    const child = new Child(
      ['superres', '--ckpt', gray, '--n', '2', '--steps', '1000', '--method', 'dps', '--out', out, '--json', json],
      { cwd: tmp, env: fineProgressEnv, timeout: 60_000 },
    );
    expect(await child.until((e) => /step [2-9]\d*\/1000/.test(e)), child.stderr).toBe(true);
    child.proc.kill('SIGINT');
    const r = await child.exited;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/superres \(dps\): stopped; nothing written/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(json)).toBe(false);
  }, 60_000);
});
