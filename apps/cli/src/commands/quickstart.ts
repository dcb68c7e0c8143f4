import * as tf from '@tensorflow/tfjs';
import { join, resolve } from 'node:path';
import { createScoreFn, MlpScoreModel } from '@sbm/models';
import { createSde } from '@sbm/sde';
import { sample } from '@sbm/samplers';
import { logLikelihood } from '@sbm/likelihood';
import { train } from '@sbm/training';
import { startBackend } from '../backend';
import { EXIT_INTERRUPTED } from '../errors';
import { GracefulStop } from '../signals';
import { scoreFieldPng, squareBounds, swdWithFloor } from '../figures';
import { COLORS, lossCurvePng, scatterPng } from '../plot';
import { ProgressReporter } from '../progress';
import { toyData } from '../setup';
import { mean, stdErr, writeFileAtomic, writeJsonAtomic } from '../util';

export interface QuickstartOptions {
  steps: number;
  n: number;
  nllN: number;
  seed: number;
  out: string;
  backend?: string;
}

/**
 * The two-minute demo: an MLP score model on the swiss roll under the VP SDE, sampled with predictor–corrector and
 * with the probability-flow ODE, judged by sliced-W₂ against the data's own noise floor, with the exact-trace NLL.
 * Settings are those of @sbm/training's swiss-roll test (1.35 × the floor after 1000 steps on 2-thread wasm).
 */
export async function quickstart(o: QuickstartOptions): Promise<number> {
  const backend = await startBackend(o.backend);
  const out = resolve(o.out);
  const sde = createSde('vp');
  const data = toyData('swiss-roll', 10_000, 0);
  // cond = t ∈ [0, 1] with the output divided by the VP marginal std (the tutorial's form): Fourier features of t at
  // scale 16 resolve the time axis, whereas the noise-time label 999·t would alias them.
  const model = new MlpScoreModel({ name: 'mlp', inputDim: 2, marginalProbStd: sde.toConfig() }, 1);
  const stop = new GracefulStop('stopping; nothing is written');
  const progress = new ProgressReporter(o.steps, 'samples');
  process.stderr.write(`quickstart: training a 2-D MLP (128×3) on the swiss roll, VP SDE, ${o.steps} steps\n`);
  const t0 = Date.now();
  const res = await train({
    model,
    sde,
    data,
    steps: o.steps,
    batchSize: 512,
    lr: 5e-3,
    warmup: Math.min(50, Math.max(1, Math.round(o.steps / 10))),
    ema: { decay: 0.99 },
    seed: 3,
    historyEvery: 1,
    signal: stop.signal,
    onProgress: (p) => progress.update(p),
  });
  progress.end();
  stop.dispose();
  const trainSeconds = (Date.now() - t0) / 1000;
  data.dispose();
  if (res.aborted) {
    res.ema.dispose();
    model.dispose();
    process.stderr.write(`quickstart: stopped after ${res.step} steps; nothing written\n`);
    return stop.code() ?? EXIT_INTERRUPTED;
  }
  res.ema.copyTo(model);
  res.ema.dispose();
  const score = createScoreFn(model, sde);

  process.stderr.write('quickstart: sampling (predictor–corrector, probability-flow ODE)\n');
  const pc = await sample({
    sampler: 'pc',
    corrector: 'none',
    steps: 200,
    sde,
    score,
    shape: [o.n, 2],
    seed: o.seed + 9,
  });
  const ode = await sample({ sampler: 'ode', sde, score, shape: [o.n, 2], seed: o.seed + 10 });
  const pcEval = swdWithFloor(pc.samples as tf.Tensor2D, 'swiss-roll', o.seed);
  const odeEval = swdWithFloor(ode.samples as tf.Tensor2D, 'swiss-roll', o.seed);
  const pcPts = Float32Array.from(await pc.samples.data());
  const odePts = Float32Array.from(await ode.samples.data());
  tf.dispose([pc.samples, ode.samples]);

  process.stderr.write(`quickstart: NLL of ${o.nllN} held-out points (probability-flow ODE, exact trace)\n`);
  const held = toyData('swiss-roll', o.nllN, o.seed + 200);
  const ll = await logLikelihood(score, held, sde, o.seed + 11, { divergence: 'exact' });
  held.dispose();

  const bounds = squareBounds(pcEval.reference);
  const samplesPng = scatterPng(
    [
      { title: 'data', points: pcEval.reference, color: COLORS.data },
      { title: `PC (${pc.stats.nfe} NFE)`, points: pcPts, color: COLORS.pc },
      { title: `ODE (${ode.stats.nfe} NFE)`, points: odePts, color: COLORS.ode },
    ],
    {
      bounds,
      caption:
        `swiss roll, ${o.steps} steps: sliced-W2 PC ${(pcEval.swd / pcEval.floor).toFixed(2)}×, ` +
        `ODE ${(odeEval.swd / odeEval.floor).toFixed(2)}× the noise floor`,
    },
  );
  const fieldPng = await scoreFieldPng(score, pcEval.reference, { bounds, title: 'learned score at t = 0.05' });
  const steps = res.losses.map((_, i) => res.firstStep + i + 1);
  const lossPng = lossCurvePng(steps, res.losses, 'DSM loss (per step, smoothed)');
  const report = {
    command: 'quickstart',
    backend: backend.name,
    backendReason: backend.reason,
    data: 'toy:swiss-roll',
    sde: sde.toConfig(),
    model: model.toConfig(),
    params: model.countParams(),
    steps: res.step,
    batchSize: 512,
    trainSeconds,
    finalLoss: mean(res.losses.slice(-50)),
    n: o.n,
    swdPc: pcEval.swd,
    swdOde: odeEval.swd,
    swdFloor: pcEval.floor,
    swdPcRatio: pcEval.swd / pcEval.floor,
    swdOdeRatio: odeEval.swd / odeEval.floor,
    nfe: { pc: pc.stats.nfe, ode: ode.stats.nfe, nll: ll.nfe },
    sampleMs: { pc: pc.stats.ms, ode: ode.stats.ms },
    nllNats: mean(ll.nll),
    nllStdErr: stdErr(ll.nll),
    nllN: o.nllN,
    nllDivergence: 'exact',
    seed: o.seed,
  };
  await writeFileAtomic(join(out, 'samples.png'), samplesPng);
  await writeFileAtomic(join(out, 'score-field.png'), fieldPng);
  await writeFileAtomic(join(out, 'loss.png'), lossPng);
  await writeJsonAtomic(join(out, 'report.json'), report);
  model.dispose();

  const r = (v: number) => v.toFixed(4);
  process.stdout.write(
    [
      `trained ${res.step} steps in ${trainSeconds.toFixed(1)} s on ${backend.name}`,
      `sliced-W2  PC ${r(pcEval.swd)} (${report.swdPcRatio.toFixed(2)}× floor, ${pc.stats.nfe} NFE)  ` +
        `ODE ${r(odeEval.swd)} (${report.swdOdeRatio.toFixed(2)}× floor, ${ode.stats.nfe} NFE)  floor ${r(pcEval.floor)}`,
      `NLL ${report.nllNats.toFixed(3)} ± ${report.nllStdErr.toFixed(3)} nats per sample (n = ${o.nllN}, exact trace, ${ll.nfe} NFE)`,
      `wrote ${join(out, 'samples.png')}`,
      `      ${join(out, 'score-field.png')}`,
      `      ${join(out, 'loss.png')}`,
      `      ${join(out, 'report.json')}`,
      '',
    ].join('\n'),
  );
  return 0;
}
