// `npm run bench -- likelihood [--batch N (8)] [--probes P (16)] [--seed S] [--backend cpu|wasm] [--sdes ve,vp,subvp]`
// Probability-flow ODE log-likelihood (@sbm/likelihood, RK45 rtol = atol = 1e-5, eps = 1e-5) with the exact oracle
// score of the 2-D and 16-D Gaussian-mixture fixtures, against the oracle's exact log p_eps. One JSON line per
// (mixture, SDE, divergence): NFE, mean NLL and exact NLL over the batch (nats), errPerDim = mean |error| / D,
// maxErrPerDim, priorGapPerDim = mean |log π(x_T) − log p_T(x_T)| / D (the part of the error that is the SDE's
// prior not being exactly p_T, not the integrator's), for Hutchinson the mean standard error over probes, and ms.
// Needs the dists: (cd packages/core && npx tsup) and the same for sde, ode, gaussian-mixture, likelihood.
import * as tf from '@tensorflow/tfjs';
import { parseArgs, round } from '../lib/timing.mjs';

const EPS = 1e-5;

export async function run({ args, emit, log }) {
  const opts = parseArgs(args);
  const batch = Number(opts.batch ?? 8);
  const probes = Number(opts.probes ?? 16);
  const seed = Number(opts.seed ?? 0);
  const backend = opts.backend ?? 'cpu';
  const sdes = String(opts.sdes ?? 've,vp,subvp').split(',');
  let mods;
  try {
    mods = {
      sde: await import('@sbm/sde'),
      gm: await import('@sbm/gaussian-mixture'),
      lik: await import('@sbm/likelihood'),
    };
  } catch (e) {
    throw new Error(
      `build the dists first: for p in core sde ode gaussian-mixture likelihood; do (cd packages/$p && npx tsup); done — ${e.message}`,
    );
  }
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(backend);
  await tf.ready();
  const read = (t) => {
    const a = Array.from(t.dataSync());
    t.dispose();
    return a;
  };
  for (const [mixture, mix] of [
    ['mixture2d', mods.gm.mixture2d()],
    ['mixture16d', mods.gm.mixture16d()],
  ]) {
    const x = mix.sample(batch, 1000 + seed);
    for (const name of sdes) {
      const sde = mods.sde.createSde(name);
      const oracle = mix.perturbed(sde);
      const exact = read(oracle.logProb(x, EPS)).map((v) => -v);
      for (const divergence of ['exact', 'rademacher', 'gaussian']) {
        const p = divergence === 'exact' ? 1 : probes;
        log(`${mixture} ${name} ${divergence} (batch ${batch}, probes ${p})`);
        const t0 = performance.now();
        const r = await mods.lik.logLikelihood(oracle.scoreFn, x, sde, seed, {
          divergence,
          probes: p,
          returnLatent: true,
        });
        const ms = performance.now() - t0;
        const gap = read(tf.tidy(() => tf.sub(sde.priorLogp(r.latent), oracle.logProb(r.latent, sde.T))));
        r.latent.dispose();
        const err = r.nll.map((v, b) => Math.abs(v - exact[b]) / r.dim);
        const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
        emit({
          mixture,
          dim: r.dim,
          sde: name,
          divergence,
          probes: p,
          batch,
          nfe: r.nfe,
          nll: round(mean(r.nll), 4),
          exactNll: round(mean(exact), 4),
          errPerDim: round(mean(err), 5),
          maxErrPerDim: round(Math.max(...err), 5),
          priorGapPerDim: round(mean(gap.map(Math.abs)) / r.dim, 5),
          meanStdErr: r.nllStdErr ? round(mean(r.nllStdErr), 4) : null,
          ms: round(ms, 0),
          backend,
        });
      }
    }
    x.dispose();
  }
}
