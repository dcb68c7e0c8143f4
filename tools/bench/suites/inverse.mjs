// `npm run bench -- inverse [--only oracle|mnist|<case>[,<case>...]] [--n 100] [--methods dps,projection,...]
//   [--sampler dpmpp-3m-sde] [--pc-steps 30] [--denoise-to-zero] [--draws K (1)] [--eps E] [--ckpt DIR] [--dps-steps 20] [--repaint-steps 20] [--repaint-jump 5] [--repaint-r 3] [--guidance-scale 1,2,4] [--png-tag T] [--color-ckpt DIR] [--steps 30,100] [--oracle-n 1000 (8-D: 500)] [--refs 3]
//   [--backend wasm|cpu]`
// Issue 14 item 7: the conditional samplers of @sbm/inverse-problems, one JSON line per case (implementation in
// suites/inverse/).
// ORACLE (suites/inverse/oracle.mjs): the exact score of a Gaussian-mixture prior (mixture2d, 5 components; an 8-D,
// 16-component mixture) under the VP SDE, a measurement y = A x₀ + σ_y n from one prior draw x₀ with A a seeded
// coordinate mask or a random N(0, 1/D) matrix, m ∈ {1, D/2} rows, σ_y ∈ {0, 0.1}; methods projection / repaint (clean
// masks only), lambda-projection, dps, and guidance on a labelled mixture (component k has label k mod C, the exact
// noise-conditional classifier log π_c + log p_t(x | c)). Per (case, method, steps): sliced W2 (128 projections) of
// n = 1000 (8-D: 500) samples to K = 3 exact posterior sets (mean), swdFloor = the mean over the exact pairs, ratio, the error of
// the sample mean ‖x̄ − E[x | y]‖ and its exact-sampler scale √(tr Cov[x | y] / n), NFE, VJPs, ms.
// MNIST (suites/inverse/mnist.mjs): the first --n test digits, noise-free y, tasks inpaint-box, inpaint-random (70 %
// missing), superres-4x, cs-25, ct-8, ct-23, mri-4x, guidance, colorize; every baseline from baselinesFor(op) and
// the methods that apply; PSNR / SSIM (@sbm/metrics, data range [0, 1], Gaussian window 11, σ 1.5) mean ± SE;
// PNGs to tools/bench/results/inverse-<task>.png. Score model: --ckpt DIR, default /work/mnist-eval/ckpt (tutorial-ve ScoreNet, EMA).
// Step budget (the MNIST half in ≤ 35 min on 2 contended cores, where a batch-100 ScoreNet forward took 1–3 s and a
// VJP through it 3–4× that): projection / lambda-projection / guidance / colorize ride DPM-Solver++(3M) SDE for 30
// steps (30 NFE; --sampler pc for the reference's PC, which at 30 steps gave samples worse than the baselines), DPS
// its reverse-diffusion update for 20 steps (20 NFE + 20 VJPs), RePaint 20 steps with jump length 5 and 3
// resamplings (≈ 60 NFE) — far below the reference's 1000 (PC) / 1000 (DPS) / 250 × 10 (RePaint).
// Needs the dists: see DIST_HINT in suites/inverse/common.mjs.
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from '../lib/timing.mjs';
import { loadModules } from './inverse/common.mjs';
import { oracleCaseNames, runOracle } from './inverse/oracle.mjs';
import { MNIST_CASES, runMnist } from './inverse/mnist.mjs';

export async function run({ args, emit, log }) {
  const opts = parseArgs(args);
  const only = String(opts.only ?? 'all').split(',');
  const oracleNames = oracleCaseNames();
  for (const o of only) {
    const known =
      o === 'all' ||
      o === 'oracle' ||
      o === 'mnist' ||
      MNIST_CASES.includes(o) ||
      oracleNames.some((n) => n === o || n.startsWith(`${o}-`));
    if (!known) {
      throw new Error(
        `--only: expected oracle, mnist, an MNIST task (${MNIST_CASES.join(', ')}) or an oracle case (e.g. oracle-2d, oracle-8d-dense-m4-noisy; all: ${oracleNames.join(', ')}), got ${o}`,
      );
    }
  }
  const selectedOracle = (name) =>
    only.some((o) => o === 'all' || o === 'oracle' || o === name || name.startsWith(`${o}-`));
  const selectedMnist = (name) => only.some((o) => o === 'all' || o === 'mnist' || o === name);
  const wantOracle = oracleNames.some(selectedOracle);
  const wantMnist = MNIST_CASES.some(selectedMnist);
  const mods = await loadModules({
    be: '@sbm/backend-node',
    sde: '@sbm/sde',
    gm: '@sbm/gaussian-mixture',
    metrics: '@sbm/metrics',
    ip: '@sbm/inverse-problems',
    ...(wantMnist
      ? {
          training: '@sbm/training',
          models: '@sbm/models',
          dsNode: '@sbm/datasets/node',
          mnistNode: '@sbm/mnist-eval/node',
        }
      : {}),
  });
  await mods.be.initBackend({ backend: opts.backend ?? 'wasm', log: (line) => log(line) });
  if (wantOracle) await runOracle({ mods, opts, emit, log, selected: selectedOracle });
  if (wantMnist) await runMnist({ mods, opts, emit, log, selected: selectedMnist });
  tf.disposeVariables();
}
