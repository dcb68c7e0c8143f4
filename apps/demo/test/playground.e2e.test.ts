import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { toy } from '@sbm/datasets';
import { slicedWasserstein } from '@sbm/metrics';
import type { SbmDemoHook } from '../src/hook';
import {
  NO_CHROMIUM,
  buildSite,
  hasChromium,
  launchChromium,
  openDemo,
  screenshot,
  serveSite,
  type StaticServer,
} from './harness';

/*
 * The 2-D playground in Debian's chromium without a GPU (WebGPU has no adapter; WebGL is SwiftShader), driven only
 * through window.sbmDemo. Figures go to the console as JSON lines (cold start, steps/s per backend).
 */
// window.sbmDemo's type comes with src/hook.ts (a global declaration).
export type { SbmDemoHook };

/**
 * Training budget of the swiss-roll check: the page's recipe (VE with σ_max = the data's diameter, MLP 128×3, batch
 * 512, lr 1e-2) for half its 500 steps: ≈ 25 s on 2-thread wasm on the loaded 2-core dev machine (300 steps: 31 s,
 * 1.14 × the floor at N = 500).
 */
const SDE = process.env.SBM_DEMO_SDE ?? 've';
const STEPS = Number(process.env.SBM_DEMO_STEPS ?? 250);
const WIDTH = Number(process.env.SBM_DEMO_WIDTH ?? 128);
const BATCH = Number(process.env.SBM_DEMO_BATCH ?? 512);
const LR = Number(process.env.SBM_DEMO_LR ?? 1e-2);
const N = 500;
/** Steps trained on each backend of the switching test: SwiftShader WebGL spends seconds compiling shaders. */
const SWITCH_STEPS = 3;

let server: StaticServer | undefined;
let browser: Browser | undefined;

describe.skipIf(!hasChromium)(`demo playground in headless Chromium (${NO_CHROMIUM})`, () => {
  beforeAll(async () => {
    const site = await buildSite();
    console.log(JSON.stringify({ metric: 'demo-site-build', built: site.built, ms: site.ms }));
    server = await serveSite(site.dir);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('loads without console errors on the automatic backend (wasm here), isolated, with a thread per core', async () => {
    const demo = await openDemo(browser!, server!.origin);
    try {
      const s = await demo.page.evaluate(() => ({
        backend: window.sbmDemo.backend,
        reason: window.sbmDemo.backendReason,
        isolated: window.sbmDemo.crossOriginIsolated,
        coldStartMs: window.sbmDemo.coldStartMs,
        options: window.sbmDemo.options(),
        shown: document.querySelector('#backend-name')?.textContent,
        cores: navigator.hardwareConcurrency,
      }));
      console.log(JSON.stringify({ metric: 'demo-cold-start', backend: s.backend, ms: s.coldStartMs }));
      expect(demo.errors).toEqual([]);
      // No GPU: automatic selection skips software WebGPU/WebGL, so wasm wins (backend-browser's rule).
      expect(s.backend).toBe('wasm');
      expect(s.shown).toBe('wasm');
      expect(s.isolated).toBe(true);
      // The worker asks for every core up to 4; tfjs alone would give half of them (its backend.cc cap, which
      // @sbm/backend-browser lifts), i.e. 1 thread on a 2-core machine.
      const threads = Math.max(1, Math.min(4, s.cores));
      expect(s.reason).toMatch(new RegExp(`^wasm \\(${threads} threads?[);]`));
      expect(s.coldStartMs).toBeGreaterThan(0);
      expect(s.options.sdes).toEqual(expect.arrayContaining(['ve', 'vp', 'subvp']));
      expect(s.options.samplers).toEqual(expect.arrayContaining(['pc', 'ode', 'em']));
      expect(s.options.toys).toContain('swiss-roll');
      await screenshot(demo.page, 'playground-load');
    } finally {
      await demo.close();
    }
    // ?threads=1 is honoured too (the comparison page of the README): the count is the one asked for.
    const single = await openDemo(browser!, server!.origin, '?backend=wasm&threads=1');
    try {
      const reason = await single.page.evaluate(() => window.sbmDemo.backendReason);
      expect(reason).toMatch(/^wasm \(1 thread[);]/);
      expect(single.errors).toEqual([]);
    } finally {
      await single.close();
    }
  });

  it(`a ${STEPS}-step ${SDE} swiss-roll run lowers the loss and samples within 2× the sliced-W2 floor`, async () => {
    const demo = await openDemo(browser!, server!.origin);
    try {
      const r = await demo.page.evaluate(
        async ({ sde, steps, n, width, batchSize, lr }) => {
          const h = window.sbmDemo;
          await h.setData({ toy: 'swiss-roll', n: 10_000, seed: 0 });
          // The page's own follow-up (sample and animate) is skipped: the test asks for each with its own budget.
          const train = await h.startTraining({
            sde,
            hidden: [width, width, width],
            steps,
            batchSize,
            lr,
            followUp: false,
          });
          const frames = await h.trajectories({ n: 200, steps: 40 });
          const samples = await h.sample({ sampler: 'pc', steps: 200, n, seed: 9 });
          return { train, samples, frames, canvases: h.canvases() };
        },
        { sde: SDE, steps: STEPS, n: N, width: WIDTH, batchSize: BATCH, lr: LR },
      );
      console.log(
        JSON.stringify({
          metric: 'demo-train-2d',
          backend: r.train.backend,
          sde: SDE,
          steps: r.train.step,
          ms: r.train.ms,
          stepsPerSec: r.train.stepsPerSec,
          firstLoss: r.train.firstLoss,
          finalLoss: r.train.finalLoss,
        }),
      );
      expect(r.train.aborted).toBe(false);
      expect(r.train.step).toBe(STEPS);
      // The DSM loss (λ = σ²) with s ≡ 0 is E‖z‖²/2 = D/2 = 1 for every SDE. VE's floor is higher than VP's (half
      // its training times have σ below the arms' width, where the data's own noise is left): ≈ 0.71–0.72 after
      // 250–300 steps here (the mean of the last 50 steps, whose spread is well under 0.01), so 0.85 is the
      // zero-score loss less 15 %, and the run must end below where it started (first report, step 10: ≈ 0.91).
      expect(r.train.finalLoss).toBeLessThan(0.85);
      expect(r.train.finalLoss).toBeLessThan(r.train.firstLoss);
      expect(r.samples.shape).toEqual([N, 2]);
      // 40 steps streamed every step (50 frames asked for), plus the starting frame, in each of the three panels.
      expect(r.frames).toEqual({ forward: 41, reverse: 41, ode: 41 });

      // Sliced-W2 to fresh data, against the floor: the same distance between two independent data sets of size N.
      const samples = tf.tensor2d(r.samples.values, [N, 2]);
      const truth = toy('swiss-roll', N, 101);
      const other = toy('swiss-roll', N, 102);
      const swd = slicedWasserstein(samples, truth, { projections: 256, seed: 5 });
      const floor = slicedWasserstein(other, truth, { projections: 256, seed: 5 });
      tf.dispose([samples, truth, other]);
      console.log(JSON.stringify({ metric: 'demo-swd', swd, floor, ratio: swd / floor }));
      expect(swd).toBeLessThan(2 * floor);

      // Score arrows, the three trajectory panels and the samples are drawn (an empty plot with axes counts 0; its
      // caption a few hundred pixels, 200 dots of 3×3 pixels up to 1800).
      for (const name of ['score', 'forward', 'reverse', 'ode', 'samples', 'loss']) {
        expect(r.canvases[name].inked, name).toBeGreaterThan(1000);
      }
      expect(demo.errors).toEqual([]);
      await screenshot(demo.page, 'playground-trained');
    } finally {
      await demo.close();
    }
  });

  it('switches to webgl (SwiftShader) and back to wasm, training on each; reports a failing backend on screen', async () => {
    const demo = await openDemo(browser!, server!.origin);
    try {
      const r = await demo.page.evaluate(async (STEPS_PER_BACKEND) => {
        const h = window.sbmDemo;
        const out: Record<string, unknown> = {};
        for (const name of ['webgl', 'wasm']) {
          const b = await h.setBackend(name);
          const t = await h.startTraining({
            hidden: [128, 128, 128],
            steps: STEPS_PER_BACKEND,
            batchSize: 512,
            followUp: false,
          });
          out[name] = { ...t, switchedTo: b.backend, shown: document.querySelector('#backend-name')?.textContent };
        }
        let failure = '';
        try {
          await h.setBackend('webgpu');
        } catch (e) {
          failure = (e as Error).message;
        }
        out.failure = failure;
        out.after = h.backend;
        out.banner = document.querySelector('#errors')?.textContent ?? '';
        out.errors = h.errors;
        return out;
      }, SWITCH_STEPS);
      for (const name of ['webgl', 'wasm']) {
        const b = r[name] as {
          backend: string;
          switchedTo: string;
          shown: string;
          step: number;
          finalLoss: number;
          stepsPerSec: number;
        };
        console.log(
          JSON.stringify({ metric: 'demo-train-2d', backend: name, steps: b.step, stepsPerSec: b.stepsPerSec }),
        );
        expect(b.switchedTo).toBe(name);
        // the run itself reports the backend it trained on
        expect(b.backend).toBe(name);
        expect(b.shown).toBe(name);
        expect(b.step).toBe(SWITCH_STEPS);
        expect(Number.isFinite(b.finalLoss)).toBe(true);
      }
      // --disable-gpu: navigator.gpu has no adapter, so asking for webgpu fails, on screen, and the page keeps wasm.
      expect(String(r.failure)).toMatch(/WebGPU/);
      expect(String(r.banner)).toContain('backend webgpu');
      expect(String(r.banner)).toContain('BACKEND_UNAVAILABLE');
      expect(r.after).toBe('wasm');
      await screenshot(demo.page, 'playground-backends');
    } finally {
      await demo.close();
    }
  });

  it('reports an empty hand-drawn set on screen', async () => {
    const demo = await openDemo(browser!, server!.origin);
    try {
      const r = await demo.page.evaluate(async () => {
        const h = window.sbmDemo;
        await h.setData({ points: [] });
        let failure = '';
        try {
          await h.startTraining({ steps: 10 });
        } catch (e) {
          failure = (e as Error).message;
        }
        return { failure, banner: document.querySelector('#errors')?.textContent ?? '', running: h.training.running };
      });
      expect(r.failure).toMatch(/at least 2 hand-drawn points, got 0/);
      expect(r.banner).toMatch(/training: points: expected at least 2 hand-drawn points, got 0/);
      expect(r.running).toBe(false);
      expect(demo.errors).toEqual([]);
      await screenshot(demo.page, 'playground-empty-drawing');
    } finally {
      await demo.close();
    }
  });
});
