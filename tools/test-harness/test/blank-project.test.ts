// "Install only @sbm/samplers": a blank project whose package.json names only @tensorflow/tfjs and @sbm/samplers
// (the other packed tarballs arrive as its dependencies through `overrides` with file: specs, npm's default layout)
// samples with PC, the probability-flow ODE and DPM-Solver from ESM, CJS and TypeScript --strict, importing
// everything from @sbm/samplers; a misspelt option fails tsc and throws at run time with a suggestion; an SDE
// registered from ESM is used by the CJS build in the same process.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** @sbm/* packages that @sbm/samplers needs at run time, from the package.json files (transitively). */
function closure(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const pkg = JSON.parse(readFileSync(join(root, 'packages', name.slice('@sbm/'.length), 'package.json'), 'utf8'));
  for (const dep of Object.keys(pkg.dependencies ?? {})) if (dep.startsWith('@sbm/')) closure(dep, seen);
  return seen;
}
const needed = [...closure('@sbm/samplers')];
const built = needed.every((n) => existsSync(join(root, 'packages', n.slice(5), 'dist', 'index.cjs')));
const tfjsVersion = JSON.parse(readFileSync(join(root, 'node_modules/@tensorflow/tfjs/package.json'), 'utf8')).version;

const run = (cmd: string, args: string[], cwd: string, timeout = 300_000) => {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, npm_config_audit: 'false' },
  });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
};

// A Gaussian N(m, s²I) in 2-D has the closed-form perturbed score −(x − α m)/(α² s² + σ²) under every affine SDE.
const SCORE_JS = `
const m = [2, -1], s = 0.5;
const score = (sde) => (x, t) => tf.tidy(() => {
  const a = sde.alphaT(t).reshape([-1, 1]), sd = sde.stdT(t).reshape([-1, 1]);
  return tf.div(tf.sub(tf.mul(a, tf.tensor1d(m)), x), tf.add(tf.mul(tf.square(a), s * s), tf.square(sd)));
});
async function moments(r) {
  const v = await r.samples.data(); r.samples.dispose();
  const n = v.length / 2; let m0 = 0, m1 = 0; for (let i = 0; i < n; i++) { m0 += v[2 * i]; m1 += v[2 * i + 1]; }
  return [m0 / n, m1 / n];
}
`;

const ESM = `
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { sample, VpSde, createSde, registerSde, SbmError, isSbmError } from '@sbm/samplers';
${SCORE_JS}
const sde = new VpSde();
for (const sampler of ['pc', 'ode', 'dpm-solver']) {
  const r = await sample({ sampler, sde, score: score(sde), shape: [400, 2], seed: 1, ...(sampler === 'ode' ? {} : { steps: 50 }) });
  const [a, b] = await moments(r);
  // Standard error of a mean of 400 draws with s = 0.5 is 0.025: 5 standard errors.
  if (Math.abs(a - 2) > 0.125 || Math.abs(b + 1) > 0.125) throw new Error(sampler + ' mean ' + a + ', ' + b);
  console.log('esm', sampler, 'ok');
}
try {
  await sample({ sampler: 'pc', sde, score: score(sde), shape: [4, 2], seed: 1, stpes: 3 });
  throw new Error('misspelt option accepted');
} catch (e) {
  if (!(e instanceof SbmError) || !/did you mean "steps"/.test(e.message)) throw e;
  console.log('esm misspelt:', e.message);
}
registerSde('blank-vp', (o) => new VpSde({ betaMax: 10, ...o }));
const require = createRequire(import.meta.url);
const cjs = require('@sbm/samplers');
if (cjs.sample === sample) throw new Error('expected the CJS build to be a separate copy');
const fromCjs = cjs.createSde('blank-vp');
const r = await cjs.sample({ sampler: 'dpm-solver', sde: new VpSde(), score: score(sde), shape: [8, 2], seed: 2, steps: 5 });
r.samples.dispose();
if (!isSbmError(new cjs.SbmError('INVALID_ARGUMENT', 'x'))) throw new Error('SbmError differs between copies');
// The factory registered from ESM set betaMax 10: the CJS build's createSde found it in the shared registry.
if (fromCjs.betaMax !== 10) throw new Error('CJS createSde did not use the ESM-registered factory');
console.log('cjs used the ESM-registered sde blank-vp', fromCjs.name, fromCjs.betaMax, 'and the ESM VpSde');
`;

const CJS = `
const tf = require('@tensorflow/tfjs');
const { sample, createSde } = require('@sbm/samplers');
${SCORE_JS}
(async () => {
  const sde = createSde('vp');
  for (const sampler of ['pc', 'ode', 'dpm-solver']) {
    const [a, b] = await moments(await sample({ sampler, sde, score: score(sde), shape: [400, 2], seed: 1, ...(sampler === 'ode' ? {} : { steps: 50 }) }));
    if (Math.abs(a - 2) > 0.125 || Math.abs(b + 1) > 0.125) throw new Error(sampler + ' mean ' + a + ', ' + b);
    console.log('cjs', sampler, 'ok');
  }
})().catch((e) => { console.error(e); process.exit(1); });
`;

const TS_GOOD = `
import * as tf from '@tensorflow/tfjs';
import { sample, VpSde, type ScoreFn, type SampleResult } from '@sbm/samplers';
const sde = new VpSde();
const score: ScoreFn = (x, t) => tf.tidy(() => tf.neg(tf.div(x, tf.add(tf.square(sde.stdT(t)), tf.square(sde.alphaT(t))).reshape([-1, 1]))));
export async function main(): Promise<SampleResult[]> {
  return [
    await sample({ sampler: 'pc', sde, score, shape: [4, 2], seed: 1, steps: 10, snr: 0.16 }),
    await sample({ sampler: 'ode', sde, score, shape: [4, 2], seed: 1 }),
    await sample({ sampler: 'dpm-solver', sde, score, shape: [4, 2], seed: 1, steps: 10 }),
  ];
}
`;
const TS_BAD = `
import { sample, VpSde, type ScoreFn } from '@sbm/samplers';
declare const score: ScoreFn;
export const bad = sample({ sampler: 'pc', sde: new VpSde(), score, shape: [4, 2], seed: 1, stpes: 10 });
`;

// The user's TypeScript: strict, Node's own module resolution (package.json "exports" with types for import), and
// skipLibCheck as `tsc --init` sets it (@tensorflow/tfjs-layers' own declarations fail a strict lib check).
const TSC_FLAGS = [
  '--strict',
  '--skipLibCheck',
  '--module',
  'nodenext',
  '--moduleResolution',
  'nodenext',
  '--target',
  'es2022',
  '--noEmit',
];

describe.skipIf(!built)(
  `a blank project with only @tensorflow/tfjs and @sbm/samplers${built ? '' : ' — skipped: packages are not built (npm run build)'}`,
  () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'sbm-blank-'));
      const packs = join(dir, 'packs');
      const tgz: Record<string, string> = {};
      run('mkdir', ['-p', packs], dir);
      for (const n of needed) {
        const r = run('npm', ['pack', '--silent', '--pack-destination', packs], join(root, 'packages', n.slice(5)));
        if (r.status !== 0) throw new Error(`npm pack ${n} failed:\n${r.out.slice(-2000)}`);
      }
      for (const f of readdirSync(packs)) {
        const m = /^sbm-(.+)-\d+\.\d+\.\d+.*\.tgz$/.exec(f);
        if (m) tgz[`@sbm/${m[1]}`] = `file:${join(packs, f)}`;
      }
      const app = join(dir, 'app');
      run('mkdir', ['-p', app], dir);
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify(
          {
            name: 'blank',
            private: true,
            dependencies: { '@sbm/samplers': tgz['@sbm/samplers'], '@tensorflow/tfjs': tfjsVersion },
            overrides: Object.fromEntries(Object.entries(tgz).filter(([k]) => k !== '@sbm/samplers')),
          },
          null,
          2,
        ),
      );
      const inst = run('npm', ['install', '--prefer-offline', '--no-fund', '--no-audit', '--ignore-scripts'], app);
      if (inst.status !== 0) throw new Error(`npm install failed:\n${inst.out.slice(-3000)}`);
      writeFileSync(join(app, 'esm.mjs'), ESM);
      writeFileSync(join(app, 'cjs.cjs'), CJS);
      writeFileSync(join(app, 'good.ts'), TS_GOOD);
      writeFileSync(join(app, 'bad.ts'), TS_BAD);
    }, 600_000);
    afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

    it('its package.json names only @tensorflow/tfjs and @sbm/samplers', () => {
      const pkg = JSON.parse(readFileSync(join(dir, 'app', 'package.json'), 'utf8'));
      expect(Object.keys(pkg.dependencies).sort()).toEqual(['@sbm/samplers', '@tensorflow/tfjs']);
    });

    it('samples from ESM, rejects a misspelt option with a suggestion, and shares registries with CJS', () => {
      const r = run(process.execPath, ['esm.mjs'], join(dir, 'app'));
      expect(r.out).toMatch(/esm pc ok\nesm ode ok\nesm dpm-solver ok/);
      expect(r.out).toMatch(/esm misspelt: .*unknown option "stpes" \(did you mean "steps"\?\)/);
      expect(r.out).toMatch(/cjs used the ESM-registered sde blank-vp vp 10 and the ESM VpSde/);
      expect(r.status, r.out).toBe(0);
    });

    it('samples from CJS', () => {
      const r = run(process.execPath, ['cjs.cjs'], join(dir, 'app'));
      expect(r.out).toMatch(/cjs pc ok\ncjs ode ok\ncjs dpm-solver ok/);
      expect(r.status, r.out).toBe(0);
    });

    it('typechecks under --strict, and a misspelt option fails tsc', () => {
      const tsc = (file: string) =>
        run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), ...TSC_FLAGS, file], join(dir, 'app'));
      const ok = tsc('good.ts');
      expect(ok.out).toBe('');
      expect(ok.status).toBe(0);
      const bad = tsc('bad.ts');
      expect(bad.status).not.toBe(0);
      expect(bad.out).toMatch(/bad\.ts.*error TS\d+:.*'stpes'/s);
    });
  },
);
