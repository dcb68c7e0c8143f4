// `npm run bench -- samplers [--quick] [--mixture 2d|16d] [--n N] [--refs K] [--sdes ve,vp,subvp,tutorial-ve]
//   [--samplers em,pc,ode,dpm-solver,heun,ald] [--steps 10,20,50,100,1000] [--backend wasm|cpu|…] [--seed S]`
// Sample quality against NFE and wall time of every sampler of @sbm/samplers, driven by the exact score of the
// @sbm/gaussian-mixture fixtures (2-D: 5 components; 16-D: 4 anisotropic components), so the only error is the
// sampler's. One JSON line per (mixture, SDE, sampler, step count):
//   swd      = mean sliced W2 (128 projections, seed 3) from the sampler's n samples to K independent sets of n true draws;
//   swdFloor = mean sliced W2 over the K(K−1)/2 pairs of those true sets (what an exact sampler scores on average,
//              since one set of n draws is itself K-vs-K noisy); ratio = swd / swdFloor (≈ 1: indistinguishable at n).
// Samplers: em (Euler–Maruyama), pc (reverse diffusion + Langevin corrector, snr 0.16; NFE = 2·steps), ode (RK45,
// rtol = atol = 1e-5; `steps` null, its NFE reported), dpm-solver (DPM-Solver++(2M), NFE = steps), heun (EDM
// Heun with ⌊(count + 1)/2⌋ levels, NFE = 2·levels − 1 ≈ count), ald (VE only: NCSNv2 annealed Langevin with
// L = min(count, 100) geometric levels σ_max(VE) → σ_min, count/L steps each, Technique-4 ε and the final denoise).
// Invalid combinations (the DDPM grid of VP / sub-VP needs betaMax/N < 1, so pc at ≤ 20 steps) print a line with
// `skipped` (the SbmError's message) instead of figures.
// n = 1000 samples per run on both mixtures (--quick: 500, step counts 10/20/100, K = 3), one sample set (seed 7) per
// configuration, K = 4 reference sets (6 floor pairs). The full run (≈ 50k score calls) fits in ~15 min on 2 cores
// with wasm; n = 2000 on 16-D would double the 16-D half. Default backend wasm through @sbm/backend-node's initBackend.
//
// Then the frontier (issue 13; frontier/frontier.mjs says what each line holds): every deterministic solver ×
// schedule × NFE budget, max / mean error against the exact probability-flow map from 500 fixed prior draws, on
// gaussian2d, mixture2d and mixture16d under VP and VE; the stochastic samplers by sliced W2 / floor. Its flags:
//   --only quality|frontier  run one half (default both);  --mixture gaussian,2d,16d;  --sdes vp,ve;
//   --samplers <frontier labels or sampler names> (e.g. euler,heun,dpm-solver,unipc-bh2,euler-ancestral);
//   --schedules karras,exponential,…  (default all six);  --nfe 5,8,10,15,20,35,50;  --points 500 (flow-map draws);
//   --frontier-n 1000 (stochastic samples);  --quick (gaussian + 2d, VP, NFE 5/10/20, karras + logsnr-uniform).
// `--samplers` and `--mixture` apply to both halves (each takes the names it knows). Table and plot:
//   npm run bench -- samplers --only frontier > frontier.jsonl && node tools/bench/scripts/frontier-table.mjs frontier.jsonl
// Needs the dists:
//   for p in core sde ode samplers gaussian-mixture metrics wasm-kernels backend-node; do (cd packages/$p && npx tsup); done
import * as tf from '@tensorflow/tfjs';
import { parseArgs, round } from '../lib/timing.mjs';
import { FRONTIER_MIXTURES, frontierLabels, runFrontier } from './frontier/frontier.mjs';

const ALL_SDES = ['ve', 'vp', 'subvp', 'tutorial-ve'];
const ALL_SAMPLERS = ['em', 'pc', 'ode', 'dpm-solver', 'heun', 'ald'];
const SWD = { projections: 128, seed: 3 };
// Registered names the frontier runs (its labels map to these), accepted by --samplers too.
const FRONTIER_SAMPLERS = [
  'euler',
  'heun',
  'dpm2',
  'lms',
  'ddim',
  'dpm-solver',
  'dpmpp-3m',
  'dpmpp-2s-ancestral',
  'dpmpp-sde',
  'unipc',
  'dpm-fast',
  'dpm-adaptive',
  'euler-ancestral',
  'dpm2-ancestral',
  'dpmpp-2m-sde',
  'dpmpp-3m-sde',
];

/** The sample options for one (sampler, step count); `steps` is the requested count (≈ NFE for all but pc). */
function samplerOptions(sampler, count, sde) {
  switch (sampler) {
    case 'em':
      return { sampler: 'em', steps: count };
    case 'pc':
      return { sampler: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', snr: 0.16, steps: count };
    case 'ode':
      return { sampler: 'ode', method: 'dopri5', rtol: 1e-5, atol: 1e-5 };
    case 'dpm-solver':
      return { sampler: 'dpm-solver', steps: count };
    case 'heun':
      return { sampler: 'heun', steps: Math.floor((count + 1) / 2) };
    case 'ald': {
      const levels = Math.min(count, 100);
      return {
        sampler: 'ald',
        sde,
        levels,
        stepsPerLevel: Math.max(1, Math.round(count / levels)),
        stepRule: 'ncsnv2',
      };
    }
    default:
      throw new Error(`unknown sampler ${sampler}`);
  }
}

export async function run({ args, emit, log }) {
  const opts = parseArgs(args);
  const quick = opts.quick === true;
  const backendName = opts.backend ?? 'wasm';
  const seed = Number(opts.seed ?? 7);
  const K = Number(opts.refs ?? (quick ? 3 : 4));
  const only = opts.only ?? 'both';
  if (!['both', 'quality', 'frontier'].includes(only))
    throw new Error(`--only: expected quality or frontier, got ${only}`);
  const list = (v) => (v === undefined ? undefined : String(v).split(',').filter(Boolean));
  const allMixtures = list(opts.mixture);
  const mixtures = allMixtures ? allMixtures.filter((m) => m === '2d' || m === '16d') : ['2d', '16d'];
  const sdes = String(opts.sdes ?? ALL_SDES.join(',')).split(',');
  const allSamplers = list(opts.samplers);
  const samplers = allSamplers ? allSamplers.filter((s) => ALL_SAMPLERS.includes(s)) : ALL_SAMPLERS;
  const counts = String(opts.steps ?? (quick ? '10,20,100' : '10,20,50,100,1000'))
    .split(',')
    .map(Number);
  for (const m of allMixtures ?? [])
    if (!FRONTIER_MIXTURES.includes(m)) throw new Error(`--mixture: expected gaussian, 2d or 16d, got ${m}`);
  for (const s of sdes) if (!ALL_SDES.includes(s)) throw new Error(`--sdes: unknown SDE ${s}`);
  const frontierNames = frontierLabels();
  for (const s of allSamplers ?? []) {
    if (!ALL_SAMPLERS.includes(s) && !frontierNames.includes(s) && !FRONTIER_SAMPLERS.includes(s)) {
      throw new Error(
        `--samplers: unknown sampler ${s} (quality: ${ALL_SAMPLERS.join(', ')}; frontier: ${frontierNames.join(', ')})`,
      );
    }
  }
  let mods;
  try {
    mods = {
      be: await import('@sbm/backend-node'),
      sde: await import('@sbm/sde'),
      gm: await import('@sbm/gaussian-mixture'),
      metrics: await import('@sbm/metrics'),
      samplers: await import('@sbm/samplers'),
      testing: await import('@sbm/samplers/testing'),
    };
  } catch (e) {
    throw new Error(
      `build the dists first: for p in core sde ode samplers gaussian-mixture metrics wasm-kernels backend-node; do (cd packages/$p && npx tsup); done — ${e.message}`,
    );
  }
  await mods.be.initBackend({ backend: backendName, log: (line) => log(line) });
  const backend = tf.getBackend();
  const t0 = performance.now();
  for (const mixture of only === 'frontier' ? [] : mixtures) {
    const mix = mixture === '2d' ? mods.gm.mixture2d() : mods.gm.mixture16d();
    const D = mixture === '2d' ? 2 : 16;
    const n = Number(opts.n ?? (quick ? 500 : 1000));
    // K independent true sets: the floor is the mean over their pairs, a sampler's swd its mean distance to all K.
    const refs = Array.from({ length: K }, (_, i) => mix.sample(n, 1000 + i));
    const pairs = [];
    for (let i = 0; i < K; i++)
      for (let j = i + 1; j < K; j++) pairs.push(mods.metrics.slicedWasserstein(refs[i], refs[j], SWD));
    const swdFloor = pairs.reduce((a, b) => a + b, 0) / pairs.length;
    log(`${mixture}: n ${n}, floor ${swdFloor.toFixed(4)} over ${pairs.length} pairs of ${K} true sets`);
    for (const sdeName of sdes) {
      const sde = mods.sde.createSde(sdeName);
      const score = mix.perturbed(sde).scoreFn;
      for (const sampler of samplers) {
        if (sampler === 'ald' && sdeName !== 've') continue;
        for (const count of sampler === 'ode' ? [null] : counts) {
          const base = { mixture, dim: D, n, sde: sdeName, sampler, steps: count };
          const o = { ...samplerOptions(sampler, count, sde), sde, score, shape: [n, D], seed };
          let r;
          try {
            r = await mods.samplers.sample(o);
          } catch (e) {
            // Only the step count being invalid for the SDE's discrete grid is a skip; anything else is a bug.
            const arg = e?.details?.argument;
            if (e?.name === 'SbmError' && e.code === 'INVALID_ARGUMENT' && (arg === 'N' || arg === 'steps')) {
              emit({ ...base, skipped: e.message, backend });
              log(`${mixture} ${sdeName} ${sampler} ${count}: skipped (${e.code})`);
              continue;
            }
            throw e;
          }
          const swd = refs.reduce((a, ref) => a + mods.metrics.slicedWasserstein(r.samples, ref, SWD), 0) / K;
          r.samples.dispose();
          const rec = {
            ...base,
            nfe: r.stats.nfe,
            swd: round(swd, 4),
            swdFloor: round(swdFloor, 4),
            ratio: round(swd / swdFloor, 3),
            floorPairs: pairs.length,
            ms: round(r.stats.ms, 0),
            backend,
          };
          if (sampler === 'heun') rec.levels = o.steps;
          if (sampler === 'ald') Object.assign(rec, { levels: o.levels, stepsPerLevel: o.stepsPerLevel });
          emit(rec);
          log(
            `${mixture} ${sdeName} ${sampler} ${count ?? 'rk45'}: nfe ${r.stats.nfe} ratio ${rec.ratio} ${rec.ms} ms (${Math.round((performance.now() - t0) / 1000)} s total)`,
          );
        }
      }
    }
    tf.dispose(refs);
  }
  if (only === 'quality') return;
  const num = (v) => (v === undefined ? undefined : Number(v));
  await runFrontier(
    {
      quick,
      mixtures: allMixtures,
      sdes: opts.sdes ? sdes : undefined,
      samplers: allSamplers,
      schedules: list(opts.schedules),
      nfe: list(opts.nfe)?.map(Number),
      points: num(opts.points),
      n: num(opts['frontier-n']),
      refs: num(opts.refs),
      seed: num(opts.seed),
    },
    mods,
    emit,
    log,
  );
}
