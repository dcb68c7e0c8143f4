// The sampler frontier (issue 13, item 4), run as part of `npm run bench -- samplers` (see samplers.mjs for the
// flags). For every deterministic solver × schedule × NFE budget: the max and mean Euclidean error of the solver's
// output against the exact probability-flow map of the Gaussian-mixture oracle (GaussianMixture#flowMap: closed
// form for gaussian2d, a float64 Dormand–Prince 5(4) solve at rtol = atol = 1e-10 for the mixtures), from the same
// 500 fixed prior draws (passed as `init`), on gaussian2d (issue 13's 2-D Gaussian), mixture2d and mixture16d under
// VP and VE. For the stochastic samplers: sliced W2 to exact draws over its floor, as the quality lines.
//
// The NFE budget maps to each solver's `steps` (the line records budget, steps and the NFE the solver reported):
// one score call per step for euler / ddim / lms / dpm-solver / dpmpp-3m / unipc / dpm-fast; heun takes
// L = ⌊(NFE + 1)/2⌋ levels (2L − 1 NFE, the last step an Euler step to σ̃ = 0); dpm2, dpmpp-2s (2S-ancestral with
// η = 0) and dpmpp-sde (η = 0) take ⌊NFE/2⌋ two-stage steps; dpm-adaptive sweeps rtol (= atol) and reports its NFE.
// Each solver is compared at the time where it stopped (its last progress t; t = 0 on heun's σ̃ = 0 level is the
// exact map to σ̃ = 0, flowMap's toSigma). A solver that throws (e.g. not written yet) gives a line with `error`.
//
// Lines (`"suite":"samplers","kind":"frontier"`):
//   deterministic: mixture, dim, sde, solver, sampler, options, schedule, nfeBudget, steps, nfe, max, mean, median,
//                  p95 (of the per-point Euclidean errors), end, ms, points, backend   (dpm-adaptive: rtol and atol instead of nfeBudget / steps)
//   stochastic:    …, stochastic: true, n, swd, swdFloor, ratio (sliced W2 to K exact sets of the data / floor)
//   kind "frontier-order": per (mixture, sde, solver, schedule) the least-squares slope of −log max error against
//                  log NFE (`order`; `orderMean` from the mean error) over the budgets whose error is above the
//                  float32 floor (1e-5).
import * as tf from '@tensorflow/tfjs';

export const NFE_BUDGETS = [5, 8, 10, 15, 20, 35, 50];
export const FRONTIER_SDES = ['vp', 've'];
export const FRONTIER_MIXTURES = ['gaussian', '2d', '16d'];
const ERROR_FLOOR = 1e-5;
const SWD = { projections: 128, seed: 3 };

const half = (n) => Math.max(1, Math.floor(n / 2));
const same = (n) => n;

/** Deterministic solvers: `label` → the registered sampler, fixed options and the NFE budget → steps map. */
export const DETERMINISTIC = {
  euler: { sampler: 'euler', steps: same },
  heun: { sampler: 'heun', steps: (n) => Math.max(1, Math.floor((n + 1) / 2)) },
  dpm2: { sampler: 'dpm2', steps: half },
  lms: { sampler: 'lms', steps: same },
  ddim: { sampler: 'ddim', options: { eta: 0 }, steps: same },
  'dpm-solver': { sampler: 'dpm-solver', steps: same },
  'dpmpp-3m': { sampler: 'dpmpp-3m', steps: same },
  'dpmpp-2s': { sampler: 'dpmpp-2s-ancestral', options: { eta: 0 }, steps: half },
  'dpmpp-sde': { sampler: 'dpmpp-sde', options: { eta: 0 }, steps: half },
  'unipc-bh1': { sampler: 'unipc', options: { variant: 'bh1' }, steps: same },
  'unipc-bh2': { sampler: 'unipc', options: { variant: 'bh2' }, steps: same },
  // singlestep orders 3/2/1 for the budget on DPM-Solver's own grid: no schedule
  'dpm-fast': { sampler: 'dpm-fast', options: { eta: 0 }, steps: same, ownGrid: true },
  'dpm-adaptive': { sampler: 'dpm-adaptive', adaptive: true, ownGrid: true },
};

/** Stochastic samplers (judged by sliced W2 / floor, not against the flow map). */
export const STOCHASTIC = {
  'euler-ancestral': { sampler: 'euler-ancestral', options: { eta: 1 }, steps: same },
  'dpm2-ancestral': { sampler: 'dpm2-ancestral', options: { eta: 1 }, steps: half },
  'dpmpp-2s-ancestral': { sampler: 'dpmpp-2s-ancestral', options: { eta: 1 }, steps: half },
  'dpmpp-sde-eta1': { sampler: 'dpmpp-sde', options: { eta: 1 }, steps: half },
  'dpmpp-2m-sde': { sampler: 'dpmpp-2m-sde', options: { eta: 1 }, steps: same },
  'dpmpp-3m-sde': { sampler: 'dpmpp-3m-sde', options: { eta: 1 }, steps: same },
  'ddim-eta1': { sampler: 'ddim', options: { eta: 1 }, steps: same },
};

const ADAPTIVE_RTOLS = [1e-1, 5e-2, 2e-2, 1e-2, 5e-3, 2e-3, 1e-3];
const sig = (x) => (x === null || x === undefined || !Number.isFinite(x) ? x : Number(x.toPrecision(4)));

/** The frontier's labels, for `--samplers` (a label or a registered sampler name selects its entries). */
export function frontierLabels() {
  return [...Object.keys(DETERMINISTIC), ...Object.keys(STOCHASTIC)];
}

function selected(table, names) {
  if (!names) return Object.keys(table);
  return Object.keys(table).filter((l) => names.includes(l) || names.includes(table[l].sampler));
}

function mixtureOf(gm, name) {
  if (name === 'gaussian') return gm.gaussian2d();
  if (name === '2d') return gm.mixture2d();
  if (name === '16d') return gm.mixture16d();
  throw new Error(`--mixture: expected gaussian, 2d or 16d, got ${name}`);
}

/** Rows of a tensor, read asynchronously. */
async function rows(x) {
  const v = await x.data();
  const D = x.size / x.shape[0];
  return Array.from({ length: x.shape[0] }, (_, i) => Array.from(v.subarray(i * D, (i + 1) * D)));
}

/**
 * Runs the frontier. `cfg`: { quick, mixtures, sdes, samplers (names or null), schedules (names or null), nfe,
 * points, n, refs, seed, backend }; `mods`: the imported packages; `emit` / `log` as in the bench runner.
 */
export async function runFrontier(cfg, mods, emit, log) {
  const { gm, sde: sdeMod, samplers: S, testing, metrics } = mods;
  const quick = cfg.quick === true;
  const mixtures = cfg.mixtures ?? (quick ? ['gaussian', '2d'] : FRONTIER_MIXTURES);
  const sdes = cfg.sdes ?? (quick ? ['vp'] : FRONTIER_SDES);
  const budgets = cfg.nfe ?? (quick ? [5, 10, 20] : NFE_BUDGETS);
  const schedules = cfg.schedules ?? (quick ? ['karras', 'logsnr-uniform'] : [...S.SCHEDULES]);
  const points = cfg.points ?? (quick ? 200 : 500);
  const nStoch = cfg.n ?? (quick ? 500 : 1000);
  const K = cfg.refs ?? (quick ? 3 : 4);
  const seed = cfg.seed ?? 7;
  const det = selected(DETERMINISTIC, cfg.samplers);
  const sto = selected(STOCHASTIC, cfg.samplers);
  for (const s of schedules) S.scheduleName(s, '--schedules');
  const backend = tf.getBackend();
  const t0 = performance.now();
  const elapsed = () => `${Math.round((performance.now() - t0) / 1000)} s`;

  for (const mixName of mixtures) {
    const mix = mixtureOf(gm, mixName);
    const D = mix.dim;
    for (const sdeName of sdes) {
      const sde = sdeMod.createSde(sdeName);
      const score = mix.perturbed(sde).scoreFn;
      const prob = { mixture: mixName, dim: D, sde: sdeName };
      // The fixed prior draws N(0, σ(T)² I) (the oracle's seeded sampler: the same values on every backend).
      const priorStd = sde.std(sde.T);
      const prior = new gm.GaussianMixture({
        weights: [1],
        means: [new Array(D).fill(0)],
        covariances: [priorStd ** 2],
      });
      const init = prior.sample(points, 4242);
      const xT = Float64Array.from(await init.data());
      const refs = new Map(); // end → exact map (computed once per end)
      const exactAt = (end) => {
        const key = String(end);
        if (!refs.has(key)) {
          const tr = performance.now();
          refs.set(key, end === 0 ? mix.flowMap(sde, xT, { toSigma: 0 }) : mix.flowMap(sde, xT, { to: end }));
          log(
            `${mixName} ${sdeName}: exact flow map to ${end === 0 ? 'σ̃ = 0' : `t = ${end}`} in ${Math.round(performance.now() - tr)} ms`,
          );
        }
        return refs.get(key);
      };
      exactAt(sde.samplingEps);

      /** One deterministic run: the error line (or an error line). */
      const runOne = async (label, spec, schedule, extra, fields) => {
        const entry = S.samplerEntry(spec.sampler);
        const keys = entry?.options ?? [];
        const options = { ...(spec.options ?? {}), ...extra };
        const base = { ...prob, solver: label, sampler: spec.sampler, options, schedule: schedule ?? 'own', ...fields };
        let last = null;
        try {
          if (!entry) throw new Error(`sampler "${spec.sampler}" is not registered`);
          if (schedule !== undefined && !keys.includes('schedule'))
            throw new Error(`${spec.sampler} takes no schedule`);
          const r = await S.sample({
            sampler: spec.sampler,
            sde,
            score,
            shape: [points, D],
            init,
            seed,
            ...options,
            ...(schedule !== undefined ? { schedule } : {}),
            onProgress: (p) => (last = p.t),
          });
          const end = last ?? sde.samplingEps;
          const exact = exactAt(end);
          const e = await testing.flowMapError(r.samples, exact);
          // Quantiles too: on the mixtures the max is set by the few draws near a boundary between modes, whose
          // flow is the most sensitive (a small error there can send a point towards the other mode).
          const v = await r.samples.data();
          r.samples.dispose();
          const per = Array.from({ length: points }, (_, b) => {
            let q = 0;
            for (let i = 0; i < D; i++) q += (v[b * D + i] - exact[b * D + i]) ** 2;
            return Math.sqrt(q);
          }).sort((a, b) => a - b);
          const rec = {
            ...base,
            steps: r.stats.steps,
            nfe: r.stats.nfe,
            max: sig(e.max),
            mean: sig(e.mean),
            median: sig(per[Math.floor(0.5 * (points - 1))]),
            p95: sig(per[Math.floor(0.95 * (points - 1))]),
            end: end === 0 ? 'sigma=0' : end,
            ms: Math.round(r.stats.ms),
            points,
            backend,
          };
          emit({ kind: 'frontier', ...rec });
          return rec;
        } catch (err) {
          emit({ kind: 'frontier', ...base, points, backend, error: String(err?.message ?? err) });
          return null;
        }
      };

      for (const label of det) {
        const spec = DETERMINISTIC[label];
        const scheds = spec.ownGrid ? [undefined] : schedules;
        for (const schedule of scheds) {
          const got = [];
          if (spec.adaptive) {
            const rtols = quick ? [1e-1, 1e-2, 1e-3] : ADAPTIVE_RTOLS;
            for (const rtol of rtols) {
              const rec = await runOne(label, spec, schedule, { rtol, atol: rtol }, { rtol, atol: rtol });
              if (rec) got.push(rec);
            }
          } else {
            for (const budget of budgets) {
              const rec = await runOne(label, spec, schedule, { steps: spec.steps(budget) }, { nfeBudget: budget });
              if (rec) got.push(rec);
            }
          }
          const use = got.filter((r) => r.max > ERROR_FLOOR && r.nfe > 0);
          const nfes = new Set(use.map((r) => r.nfe));
          if (nfes.size >= 3) {
            emit({
              kind: 'frontier-order',
              ...prob,
              solver: label,
              sampler: spec.sampler,
              schedule: schedule ?? 'own',
              order: sig(
                testing.convergenceOrder(
                  use.map((r) => r.nfe),
                  use.map((r) => r.max),
                ),
              ),
              orderMean: sig(
                testing.convergenceOrder(
                  use.map((r) => r.nfe),
                  use.map((r) => r.mean),
                ),
              ),
              nfe: use.map((r) => r.nfe),
              backend,
            });
          }
          const best = got.length ? got.reduce((a, b) => (a.max <= b.max ? a : b)) : null;
          log(
            `${mixName} ${sdeName} ${label} ${schedule ?? 'own'}: ${got.length}/${spec.adaptive ? 'sweep' : budgets.length} ok${best ? `, best max ${best.max} at NFE ${best.nfe}` : ''} (${elapsed()})`,
          );
        }
      }
      init.dispose();

      if (sto.length) {
        // K exact sets of the data; the floor is the mean over their pairs (as the quality lines).
        const refSets = await Promise.all(
          Array.from({ length: K }, async (_, i) => {
            const x = mix.sample(nStoch, 1000 + i);
            const r = await rows(x);
            x.dispose();
            return r;
          }),
        );
        const pairs = [];
        for (let i = 0; i < K; i++)
          for (let j = i + 1; j < K; j++) pairs.push(metrics.slicedWasserstein(refSets[i], refSets[j], SWD));
        const swdFloor = pairs.reduce((a, b) => a + b, 0) / pairs.length;
        for (const label of sto) {
          const spec = STOCHASTIC[label];
          const entry = S.samplerEntry(spec.sampler);
          for (const schedule of schedules) {
            for (const budget of budgets) {
              const options = { ...(spec.options ?? {}), steps: spec.steps(budget) };
              const base = {
                kind: 'frontier',
                stochastic: true,
                ...prob,
                solver: label,
                sampler: spec.sampler,
                options,
                schedule,
                nfeBudget: budget,
                n: nStoch,
              };
              try {
                if (!entry) throw new Error(`sampler "${spec.sampler}" is not registered`);
                if (!entry.options.includes('schedule')) throw new Error(`${spec.sampler} takes no schedule`);
                const r = await S.sample({
                  sampler: spec.sampler,
                  sde,
                  score,
                  shape: [nStoch, D],
                  seed,
                  schedule,
                  ...options,
                });
                const x = await rows(r.samples);
                r.samples.dispose();
                const swd = refSets.reduce((a, ref) => a + metrics.slicedWasserstein(x, ref, SWD), 0) / K;
                emit({
                  ...base,
                  steps: r.stats.steps,
                  nfe: r.stats.nfe,
                  swd: sig(swd),
                  swdFloor: sig(swdFloor),
                  ratio: sig(swd / swdFloor),
                  floorPairs: pairs.length,
                  ms: Math.round(r.stats.ms),
                  backend,
                });
              } catch (err) {
                emit({ ...base, backend, error: String(err?.message ?? err) });
              }
            }
            log(`${mixName} ${sdeName} ${label} ${schedule} (stochastic) done (${elapsed()})`);
          }
        }
      }
    }
  }
}
