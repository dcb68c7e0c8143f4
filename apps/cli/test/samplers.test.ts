import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { listCorrectors, listPredictors, listSamplers } from '@sbm/samplers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStaleDist, errorLines, moonsTrainArgs, pool, sbmAsync, type Result } from './helpers';

// Issue 11 item 6: every --sampler choice of `sbm sample` (and every PC predictor × corrector) runs on a tiny
// checkpoint of each SDE family. The choices come from the registries, so a newly registered sampler is covered.
const tmp = mkdtempSync(join(tmpdir(), 'sbm-cli-samplers-'));
const SDES = ['ve', 'vp', 'subvp', 'tutorial-ve'];
const ckpt = (sde: string) => join(tmp, `run-${sde}`);
const N = 20;
// ≥ 21 steps: the discrete VP grid of reverse diffusion / ancestral needs betaMax / N < 1 (betaMax 20).
const STEPS = 25;

beforeAll(async () => {
  buildStaleDist();
  const small = join(tmp, 'small.json');
  writeFileSync(small, JSON.stringify({ model: { hidden: [16, 16] } }));
  const results = await pool(
    SDES.map(
      (sde) => () => sbmAsync(moonsTrainArgs(small, ckpt(sde), 30, ['--sde', sde]), { cwd: tmp, timeout: 120_000 }),
    ),
  );
  results.forEach((r, i) => expect(r.code, `${SDES[i]}: ${r.stderr}`).toBe(0));
}, 600_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Job {
  sde: string;
  label: string;
  args: string[];
}

/**
 * The choices that must fail, and how. Ancestral sampling is defined for the SMLD (VE) and DDPM (VP) chains only
 * (score_sde's AncestralSamplingPredictor raises for others). Annealed Langevin on sub-VP diverges to NaN at the
 * same step whatever --steps (measured: "first seen at step 20" for 5, 10 and 25 steps per level) — a sampler
 * problem reported with issue 11, kept here as it is so that a fix shows up as a failing expectation to update.
 */
function expectedRefusal(j: Job): { code: number; line: RegExp } | undefined {
  if (j.label.startsWith('pc ancestral+') && (j.sde === 'subvp' || j.sde === 'tutorial-ve')) {
    return {
      code: 2,
      line: /predictor "ancestral": defined for the VE \(SMLD\) and VP \(DDPM\) chains only.*\[UNSUPPORTED\]$/,
    };
  }
  if (j.label === 'ald' && j.sde === 'subvp') {
    return { code: 1, line: /^sbm: ald: the samples contain NaN or Inf .*\[NON_FINITE\]$/ };
  }
  return undefined;
}

function samplerArgs(sampler: string): string[] {
  // RK45 and DPM-Solver adaptive choose their own steps (dpm-adaptive's --steps would cap its attempts).
  if (sampler === 'ode' || sampler === 'dpm-adaptive') return ['--sampler', sampler];
  return ['--sampler', sampler, '--steps', String(STEPS)];
}

describe('sbm sample: every sampler and every PC predictor × corrector on ve, vp, subvp and tutorial-ve', () => {
  it('writes a decodable scatter PNG and a JSON summary with finite sliced-W2, exit 0', async () => {
    const samplers = listSamplers();
    const predictors = listPredictors();
    const correctors = listCorrectors();
    expect(samplers).toEqual(expect.arrayContaining(['pc', 'em', 'ode', 'ald', 'langevin', 'dpm-solver', 'heun']));
    const jobs: Job[] = [];
    for (const sde of SDES) {
      for (const s of samplers.filter((x) => x !== 'pc')) jobs.push({ sde, label: s, args: samplerArgs(s) });
    }
    const pc = (sde: string, p: string, c: string) =>
      jobs.push({
        sde,
        label: `pc ${p}+${c}`,
        args: ['--sampler', 'pc', '--predictor', p, '--corrector', c, '--steps', String(STEPS)],
      });
    // On every family: each predictor with the default corrector and each corrector with the default predictor;
    // the rest of the predictor × corrector grid once, spread over the families (~55 children in all).
    let k = 0;
    for (const p of predictors) {
      for (const c of correctors) {
        if (p === 'reverse-diffusion' || c === 'langevin') for (const sde of SDES) pc(sde, p, c);
        else pc(SDES[k++ % SDES.length], p, c);
      }
    }
    const results: Result[] = await pool(
      jobs.map((j, i) => () => {
        const out = join(tmp, `s-${i}.png`);
        return sbmAsync(
          ['sample', '--ckpt', ckpt(j.sde), '--n', String(N), '--seed', '1', ...j.args, '--out', out, '--json'],
          {
            cwd: tmp,
            timeout: 120_000,
          },
        );
      }),
    );
    const failures: string[] = [];
    results.forEach((r, i) => {
      const j = jobs[i];
      const what = `${j.sde} / ${j.label}`;
      const refusal = expectedRefusal(j);
      if (refusal) {
        // Not defined for this SDE: refused with one line saying so, and no output file.
        const lines = errorLines(r.stderr);
        if (r.code !== refusal.code || lines.length !== 1 || !refusal.line.test(lines[0])) {
          failures.push(`${what}: expected exit ${refusal.code} ${refusal.line}, got ${r.code}: ${lines.join(' | ')}`);
        }
        if (existsSync(join(tmp, `s-${i}.png`))) failures.push(`${what}: wrote a PNG although it failed`);
        return;
      }
      if (r.code !== 0) {
        // A crash prints no "sbm: " line: then its last lines (a baseline run under load ended one with exit 1).
        const why = errorLines(r.stderr).join(' | ') || r.stderr.trim().split('\n').slice(-3).join(' | ');
        failures.push(`${what}: exit ${r.code ?? r.signal}: ${why}`);
        return;
      }
      const s = JSON.parse(r.stdout.trim()) as { n: number; nfe: number; swd: number; sampler: string };
      // pc with neither predictor nor corrector returns the prior draw: 0 evaluations of the network.
      const nfeOk = j.label === 'pc none+none' ? s.nfe === 0 : s.nfe > 0;
      if (s.n !== N || !nfeOk || !Number.isFinite(s.swd)) failures.push(`${what}: ${r.stdout}`);
      const png = decode(readFileSync(join(tmp, `s-${i}.png`)));
      if (!(png.width > 0)) failures.push(`${what}: no PNG`);
    });
    expect(failures).toEqual([]);
    // ≈ 110 child processes since issue 13's suite (≈ 200 s on 2 idle cores): room for a loaded machine.
  }, 1_200_000);
});
