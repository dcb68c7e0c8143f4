// ORACLE half of the inverse suite: conditional samplers driven by the exact score of a Gaussian mixture prior, measured
// against exact posterior samples (@sbm/gaussian-mixture condition({ A, y, noise }), Bishop PRML §2.3.3 per component),
// so the only error is the method's approximation of ∇ log p_t(y | x_t) plus its discretisation.
import * as tf from '@tensorflow/tfjs';
import { round } from '../../lib/timing.mjs';
import { elapsed, meanOf, rng, tileRow } from './common.mjs';

const SWD = { projections: 128, seed: 3 };
const SDE = 'vp';

/**
 * 8-D, 16 components (the ≥ 16-component fixture the suite needs; mixture16d has 4): means 2.5·N(0, I), covariances
 * L Lᵀ + 0.05 I with L 0.25·N(0, 1) entries (full, anisotropic), weights ∝ 0.5 + U(0, 1). Fixed by seed 816.
 */
export function mixture8d16(gm) {
  const r = rng(816);
  const D = 8;
  const K = 16;
  const means = [];
  const covariances = [];
  const raw = [];
  for (let k = 0; k < K; k++) {
    means.push(Array.from({ length: D }, () => 2.5 * r.normal()));
    const L = Array.from({ length: D }, () => Array.from({ length: D }, () => 0.25 * r.normal()));
    covariances.push(
      Array.from({ length: D }, (_, i) =>
        Array.from({ length: D }, (_, j) => L[i].reduce((s, v, q) => s + v * L[j][q], 0) + (i === j ? 0.05 : 0)),
      ),
    );
    raw.push(0.5 + r.uniform());
  }
  const z = raw.reduce((a, b) => a + b, 0);
  return new gm.GaussianMixture({ weights: raw.map((w) => w / z), means, covariances });
}

/** The measurement configurations of one mixture: coordinate masks and random dense A, m from 1 to D/2, σ_y 0 / 0.1. */
function configurations(D) {
  // m = 1 and m = D/2 (the ends of the range; 2, for D = 8, costs another third of the run).
  const ms = D === 2 ? [1] : [1, D / 2];
  const out = [];
  for (const m of ms)
    for (const kind of ['mask', 'dense'])
      for (const noise of [0, 0.1]) out.push({ m, kind, noise, label: `${kind}-m${m}-${noise ? 'noisy' : 'clean'}` });
  return out;
}

/** Sub-mixture of the components with `labels[k] === c` (weights renormalised) and its log prior mass. */
function classMixture(gm, mix, labels, c) {
  const idx = labels.map((l, k) => (l === c ? k : -1)).filter((k) => k >= 0);
  const w = idx.map((k) => mix.weights[k]);
  const mass = w.reduce((a, b) => a + b, 0);
  return {
    logMass: Math.log(mass),
    mixture: new gm.GaussianMixture({
      weights: w.map((v) => v / mass),
      means: idx.map((k) => mix.means[k]),
      covariances: idx.map((k) => mix.covariances[k]),
    }),
  };
}

/**
 * The exact noise-conditional classifier of a labelled mixture: logit_c(x_t, t) = log π_c + log p_t(x_t | c), each
 * class a sub-mixture diffused by the SDE, so ∇ log softmax(·)[c] + s(x, t) is the exact class-conditional score.
 */
function exactClassifier(classes, sde) {
  const perturbed = classes.map((c) => c.mixture.perturbed(sde));
  return (x, t) =>
    tf.tidy(() =>
      tf.stack(
        perturbed.map((p, c) => tf.add(p.logProb(x, t), classes[c].logMass)),
        1,
      ),
    );
}

/** Distances of `samples` to the K exact sets, the exact pairwise floor, and the error of the sample mean. */
function measure(mods, samples, refs, floor, exactMean, trace) {
  const swd = meanOf(refs.map((ref) => mods.metrics.slicedWasserstein(samples, ref, SWD)));
  const n = samples.shape[0];
  const mean = tf.tidy(() => tf.mean(samples, 0).dataSync());
  const meanErr = Math.sqrt(exactMean.reduce((s, v, i) => s + (mean[i] - v) ** 2, 0));
  // An exact sampler's mean misses by about √(tr Cov / n): the scale at which meanErr is noise.
  return { swd, ratio: swd / floor, meanErr, meanErrFloor: Math.sqrt(trace / n) };
}

function exactSets(mods, post, n, K) {
  const refs = Array.from({ length: K }, (_, i) => post.sample(n, 5000 + i));
  const pairs = [];
  for (let i = 0; i < K; i++)
    for (let j = i + 1; j < K; j++) pairs.push(mods.metrics.slicedWasserstein(refs[i], refs[j], SWD));
  const cov = post.covariance();
  return { refs, floor: meanOf(pairs), mean: post.mean(), trace: cov.reduce((s, row, i) => s + row[i], 0) };
}

/** The cases of `--only`: oracle-2d, oracle-8d, or one oracle-<mix>-<config> / oracle-<mix>-guidance. */
export function oracleCaseNames() {
  const names = [];
  for (const [mix, D] of [
    ['2d', 2],
    ['8d', 8],
  ]) {
    for (const c of configurations(D)) names.push(`oracle-${mix}-${c.label}`);
    names.push(`oracle-${mix}-guidance`);
  }
  return names;
}

export async function runOracle({ mods, opts, emit, log, selected }) {
  const K = Number(opts.refs ?? 3);
  // Defaults sized for ≈ 30 min on 2 contended cores: 2-D n = 1000, 8-D (16 components, twice the cases) n = 500, both
  // at 30 and 100 steps. --oracle-n / --steps set both.
  const nFor = (D) => Number(opts['oracle-n'] ?? (D === 2 ? 1000 : 500));
  const stepsList = String(opts.steps ?? '30,100')
    .split(',')
    .map(Number);
  const methodsWanted = opts.methods ? String(opts.methods).split(',') : undefined;
  const ip = mods.ip;
  const sde = mods.sde.createSde(SDE);
  const backend = tf.getBackend();
  const t0 = performance.now();
  for (const [mixName, make] of [
    ['2d', () => mods.gm.mixture2d()],
    ['8d', () => mixture8d16(mods.gm)],
  ]) {
    const prior = make();
    const D = prior.dim;
    const n = nFor(D);
    const score = prior.perturbed(sde).scoreFn;
    const base = { part: 'oracle', mixture: mixName, dim: D, components: prior.numComponents, sde: SDE, n, backend };
    for (const cfg of configurations(D)) {
      const name = `oracle-${mixName}-${cfg.label}`;
      if (!selected(name)) continue;
      const r = rng(100 * D + 10 * cfg.m + (cfg.kind === 'mask' ? 1 : 2));
      // The operator: a seeded coordinate subset (mask) or A with N(0, 1/D) entries (dense, full row rank a.s.).
      let op;
      let known = [];
      if (cfg.kind === 'mask') {
        // Fisher–Yates on the seeded stream.
        const perm = Array.from({ length: D }, (_, i) => i);
        for (let i = D - 1; i > 0; i--) {
          const j = Math.floor(r.uniform() * (i + 1));
          [perm[i], perm[j]] = [perm[j], perm[i]];
        }
        known = perm.slice(0, cfg.m).sort((a, b) => a - b);
        const mask = Array.from({ length: D }, (_, i) => (known.includes(i) ? 1 : 0));
        op = ip.maskOperator({ mask });
      } else {
        const A = Array.from({ length: cfg.m }, () => Array.from({ length: D }, () => r.normal() / Math.sqrt(D)));
        op = await ip.withPinv(ip.denseOperator({ name: 'dense', inShape: [D], outShape: [cfg.m], matrix: A }));
      }
      const M = await ip.materialize(op);
      // x₀ from the prior, y = A x₀ + σ_y n in float64; the posterior uses the non-zero rows of A (a mask operator
      // that keeps its output in image space has zero rows for the unknown entries, which carry no information).
      const x0t = prior.sample(1, 77 + cfg.m);
      const x0 = Array.from(x0t.dataSync());
      x0t.dispose();
      const yFull = [];
      const rowsA = [];
      const yA = [];
      for (let i = 0; i < M.rows; i++) {
        const row = Array.from(M.data.subarray(i * M.cols, (i + 1) * M.cols));
        const v = row.reduce((s, a, j) => s + a * x0[j], 0) + cfg.noise * r.normal();
        yFull.push(row.some((a) => a !== 0) ? v : 0);
        if (row.some((a) => a !== 0)) {
          rowsA.push(row);
          yA.push(v);
        }
      }
      const post = prior.condition({ A: rowsA, y: yA, noise: cfg.noise });
      const ex = exactSets(mods, post, n, K);
      const y1 = tf.tensor(yFull, [1, ...op.outShape]);
      const y = tileRow(y1, n);
      y1.dispose();
      log(
        `${name}: floor ${ex.floor.toFixed(4)} (${(K * (K - 1)) / 2} pairs), ${post.numComponents} posterior components`,
      );
      // projection and repaint need a coordinate mask and ignore σ_y (score_sde / RePaint are noise-free): run on
      // clean masks only; lambda-projection and dps on every configuration.
      const methods = ['projection', 'lambda-projection', 'repaint', 'dps'].filter(
        (m) =>
          (m === 'lambda-projection' || m === 'dps' || (cfg.kind === 'mask' && cfg.noise === 0)) &&
          (cfg.kind === 'mask' || m === 'lambda-projection' || m === 'dps') &&
          (!methodsWanted || methodsWanted.includes(m)),
      );
      for (const method of methods) {
        for (const steps of stepsList) {
          // RePaint re-noises and resamples every jump (≈ 10× the NFE of its step count at its defaults): a third of
          // the steps (at least 25, > its jump length 10) keeps its NFE near the PC runs of the same row.
          const s = method === 'repaint' ? Math.max(25, Math.round(steps / 3)) : steps;
          const call = {
            method,
            sde,
            score,
            shape: [n, D],
            seed: 11,
            operator: op,
            y,
            noiseStd: cfg.noise,
            ...(method === 'dps' ? { steps: s } : { samplerOptions: { steps: s } }),
          };
          const rec = { ...base, case: name, operator: cfg.kind, m: cfg.m, noise: cfg.noise, method, steps: s };
          let res;
          const w0 = performance.now();
          try {
            res = await ip.conditionalSample(call);
          } catch (e) {
            emit({ ...rec, skipped: `${e.code ?? e.name}: ${e.message}` });
            log(`${name} ${method} ${s}: skipped (${e.message})`);
            continue;
          }
          const ms = performance.now() - w0;
          const q = measure(mods, res.samples, ex.refs, ex.floor, ex.mean, ex.trace);
          res.samples.dispose();
          const out = {
            ...rec,
            nfe: res.stats.nfe,
            vjp: res.stats.vjp ?? 0,
            swd: round(q.swd, 4),
            swdFloor: round(ex.floor, 4),
            ratio: round(q.ratio, 3),
            meanErr: round(q.meanErr, 4),
            meanErrFloor: round(q.meanErrFloor, 4),
            residual: round(meanOf(res.residual), 4),
            ms: Math.round(ms),
          };
          emit(out);
          log(
            `${name} ${method} ${s}: nfe ${out.nfe} ratio ${out.ratio} meanErr ${out.meanErr} ${out.ms} ms (${elapsed(t0)} s)`,
          );
        }
      }
      tf.dispose([y, ...ex.refs]);
      op.dispose?.();
    }
    // Guidance on the labelled mixture: component k has label k mod C; the exact p(x | c) is the class's components.
    const gName = `oracle-${mixName}-guidance`;
    if (selected(gName) && (!methodsWanted || methodsWanted.includes('guidance'))) {
      const C = D === 2 ? 2 : 4;
      const labels = Array.from({ length: prior.numComponents }, (_, k) => k % C);
      const classes = Array.from({ length: C }, (_, c) => classMixture(mods.gm, prior, labels, c));
      const classifier = exactClassifier(classes, sde);
      const label = 1;
      const ex = exactSets(mods, classes[label].mixture, n, K);
      log(`${gName}: floor ${ex.floor.toFixed(4)}, class ${label} of ${C}`);
      for (const steps of stepsList) {
        const rec = { ...base, case: gName, operator: 'none', classes: C, label, method: 'guidance', steps };
        let res;
        const w0 = performance.now();
        try {
          res = await ip.conditionalSample({
            method: 'guidance',
            sde,
            score,
            shape: [n, D],
            seed: 11,
            classifier,
            label,
            numClasses: C,
            samplerOptions: { steps },
          });
        } catch (e) {
          emit({ ...rec, skipped: `${e.code ?? e.name}: ${e.message}` });
          log(`${gName} ${steps}: skipped (${e.message})`);
          continue;
        }
        const ms = performance.now() - w0;
        const q = measure(mods, res.samples, ex.refs, ex.floor, ex.mean, ex.trace);
        res.samples.dispose();
        const out = {
          ...rec,
          nfe: res.stats.nfe,
          vjp: res.stats.vjp ?? 0,
          swd: round(q.swd, 4),
          swdFloor: round(ex.floor, 4),
          ratio: round(q.ratio, 3),
          meanErr: round(q.meanErr, 4),
          meanErrFloor: round(q.meanErrFloor, 4),
          ms: Math.round(ms),
        };
        emit(out);
        log(`${gName} ${steps}: nfe ${out.nfe} ratio ${out.ratio} ${out.ms} ms (${elapsed(t0)} s)`);
      }
      tf.dispose(ex.refs);
    }
  }
}
