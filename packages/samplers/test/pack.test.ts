import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// End-to-end check of what users install: build and `npm pack` @sbm/core, @sbm/sde, @sbm/ode and @sbm/samplers, install
// only those tarballs + @tensorflow/tfjs into a blank project, and sample from a hand-written closed-form score there,
// once from an ES module (pc, ode, dpm-solver) and once through require() (dpm-solver only: the CJS run checks that the
// require() entry loads and samples; the samplers' numerics are the same code as the ESM run's).
const root = fileURLToPath(new URL('../../..', import.meta.url));
const npmOk = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;
const PACKAGES = ['core', 'sde', 'ode', 'samplers'];

// Data N(μ = 2, s = 0.5) in 1-D. Under any affine SDE, p_t = N(α μ, α² s² + σ²), so the exact score is
// −(x − α μ)/(α² s² + σ²) with α, σ from the SDE (here read through sde.alphaT / sde.stdT).
const scoreSource = (tfName: string, samplers: string[]) => `
const mu = 2, s = 0.5;
const score = (x, t) => ${tfName}.tidy(() => {
  const a = sde.alphaT(t).reshape([-1, 1]);
  const sd = sde.stdT(t).reshape([-1, 1]);
  const v = ${tfName}.add(${tfName}.mul(${tfName}.square(a), s * s), ${tfName}.square(sd));
  return ${tfName}.neg(${tfName}.div(${tfName}.sub(x, ${tfName}.mul(a, mu)), v));
});
const n = 2000;
const out = {};
for (const sampler of ${JSON.stringify(samplers)}) {
  const { samples, stats } = await sample({ sampler, sde, score, shape: [n, 1], seed: 5, steps: sampler === 'pc' ? 200 : undefined });
  const v = await samples.data();
  samples.dispose();
  const m = v.reduce((a, b) => a + b, 0) / n;
  const sdv = Math.sqrt(v.reduce((a, b) => a + (b - m) * (b - m), 0) / (n - 1));
  out[sampler] = { mean: m, std: sdv, nfe: stats.nfe };
}
console.log(JSON.stringify(out));
`;

/** Newest modification time under `path` (a file or a directory, recursively). */
function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

/**
 * The package's dist is older than its sources or build config (or missing). CI builds before testing, so the
 * rebuild (tsup with declarations: the bulk of this test's time) only runs when the dist would be stale.
 */
function distStale(cwd: string): boolean {
  const dist = join(cwd, 'dist', 'index.js');
  if (!existsSync(dist) || !existsSync(join(cwd, 'dist', 'index.d.ts'))) return true;
  const built = statSync(dist).mtimeMs;
  return ['src', 'package.json', 'tsup.config.ts'].some(
    (f) => existsSync(join(cwd, f)) && newest(join(cwd, f)) > built,
  );
}

describe.skipIf(!npmOk)('npm pack + install in a blank project (needs npm and the registry or its cache)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbm-samplers-pack-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('samples from a closed-form score with only the packed tarballs installed (ESM and CJS)', () => {
    const tarballs: string[] = [];
    for (const p of PACKAGES) {
      const cwd = join(root, 'packages', p);
      if (distStale(cwd)) execFileSync('npx', ['tsup'], { cwd, stdio: 'pipe', timeout: 180_000 });
      const info = JSON.parse(
        execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd, encoding: 'utf8' }),
      );
      tarballs.push(join(dir, info[0].filename));
    }
    const proj = join(dir, 'app');
    execFileSync('mkdir', ['-p', proj]);
    writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    execFileSync(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--no-package-lock',
        ...tarballs,
        '@tensorflow/tfjs@^4.22.0',
      ],
      { cwd: proj, stdio: 'pipe', timeout: 300_000 },
    );
    const installed = JSON.parse(readFileSync(join(proj, 'node_modules/@sbm/samplers/package.json'), 'utf8'));
    expect(installed.version).toBe('0.1.0');

    writeFileSync(
      join(proj, 'esm.mjs'),
      `import * as tf from '@tensorflow/tfjs';\nimport { VpSde, sample } from '@sbm/samplers';\nconst sde = new VpSde();\n${scoreSource('tf', ['pc', 'ode', 'dpm-solver'])}`,
    );
    writeFileSync(
      join(proj, 'cjs.cjs'),
      `const tf = require('@tensorflow/tfjs');\nconst { VeSde } = require('@sbm/sde');\nconst { sample, VeSde: Re } = require('@sbm/samplers');\nif (Re !== VeSde) throw new Error('@sbm/samplers re-exports a different VeSde');\n(async () => {\nconst sde = new VeSde();\n${scoreSource('tf', ['dpm-solver'])}\n})();`,
    );
    for (const script of ['esm.mjs', 'cjs.cjs']) {
      const stdout = execFileSync('node', [script], { cwd: proj, encoding: 'utf8', timeout: 300_000 });
      const res = JSON.parse(stdout.trim().split('\n').pop()!) as Record<
        string,
        { mean: number; std: number; nfe: number }
      >;
      // n = 2000 draws of N(2, 0.5²): the sample mean has std 0.5/√2000 ≈ 0.011 and the sample std ≈ 0.5/√4000 ≈ 0.008;
      // 5 standard errors plus a 0.02 allowance for the samplers' own discretization error at these step counts.
      for (const [sampler, r] of Object.entries(res)) {
        expect(Math.abs(r.mean - 2), `${script} ${sampler} mean`).toBeLessThan(0.055 + 0.02);
        expect(Math.abs(r.std - 0.5), `${script} ${sampler} std`).toBeLessThan(0.04 + 0.02);
      }
      if (script === 'esm.mjs') expect(res.pc.nfe).toBe(400);
      expect(res['dpm-solver'].nfe).toBe(20);
    }
  }, 600_000);
});
