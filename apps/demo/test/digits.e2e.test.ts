import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { loadDefaultClassifier, type MnistClassifier } from '@sbm/mnist-eval/node';
import type { SbmDemoHook } from '../src/hook';
import {
  NO_CHROMIUM,
  buildSite,
  hasChromium,
  launchChromium,
  openDemo,
  screenshot,
  serveSite,
  type DemoPage,
  type StaticServer,
} from './harness';

/*
 * The Digits panel in Debian's chromium without a GPU (wasm, threaded under COOP/COEP), driven only through
 * window.sbmDemo.digits. The shipped clean classifier judges the page's samples here in Node, on the plain arrays the
 * hook returns. Figures go to the console as JSON lines; SBM_DEMO_DIGITS_BACKENDS=wasm,webgl adds a timed 16-digit
 * grid per backend (warm, the second of two runs) — off by default, WebGL on SwiftShader is slow.
 */
export type { SbmDemoHook };

const PIXELS = 784;
const FIGURE_BACKENDS = (process.env.SBM_DEMO_DIGITS_BACKENDS ?? '').split(',').filter(Boolean);

interface Returned {
  shape: number[];
  values: number[];
  nfe: number;
  ms: number;
  backend: string;
  residual?: number[];
  image?: number[];
  mask?: number[];
  sinogram?: number[];
}

let server: StaticServer | undefined;
let browser: Browser | undefined;
let demo: DemoPage | undefined;
let clf: MnistClassifier | undefined;

/** Runs window.sbmDemo.digits[method](opts) in the page. */
function call(method: string, opts: unknown): Promise<Returned> {
  return demo!.page.evaluate(
    ([m, o]) => (window.sbmDemo.digits as Record<string, (x: unknown) => Promise<Returned>>)[m as string](o),
    [method, opts] as const,
  );
}

/** The clean classifier's class and max-softmax per digit of a returned batch (clipped to [0, 1], as drawn). */
async function judge(r: Returned): Promise<{ classes: number[]; confidence: number[] }> {
  const x = tf.tensor4d(r.values, [r.shape[0], 28, 28, 1]);
  const { probs, classes } = await clf!.predict(x, { range: [0, 1], outOfRange: 'clip' });
  const p = (await probs.array()) as number[][];
  const c = Array.from(await classes.data());
  tf.dispose([x, probs, classes]);
  return { classes: c, confidence: p.map((row) => Math.max(...row)) };
}

/** P(X ≥ k) for X ~ Binomial(n, p). */
function binomialTail(n: number, p: number, k: number): number {
  let sum = 0;
  for (let j = k; j <= n; j++) {
    let c = 1;
    for (let i = 0; i < j; i++) c = (c * (n - i)) / (i + 1);
    sum += c * p ** j * (1 - p) ** (n - j);
  }
  return sum;
}

describe.skipIf(!hasChromium)(`demo digits panel in headless Chromium (${NO_CHROMIUM})`, () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    clf = await loadDefaultClassifier();
    const site = await buildSite();
    console.log(JSON.stringify({ metric: 'demo-site-build', built: site.built, ms: site.ms }));
    server = await serveSite(site.dir);
    browser = await launchChromium();
    demo = await openDemo(browser, server.origin);
    await demo.page.click('nav [data-tab="digits"]');
    const t0 = Date.now();
    const info = await demo.page.evaluate(() => (window.sbmDemo.digits.load as () => Promise<unknown>)());
    console.log(JSON.stringify({ metric: 'demo-digits-load', ms: Date.now() - t0, info }));
  }, 180_000);

  afterAll(async () => {
    clf?.dispose();
    await demo?.close();
    await browser?.close();
    await server?.close();
  });

  it('16 digits sampled in the page (the panel default, 20 NFE) reach mean confidence ≥ 0.8', async () => {
    const r = await call('sample', { n: 16, seed: 0 });
    expect(r.shape).toEqual([16, 28, 28, 1]);
    expect(r.values).toHaveLength(16 * PIXELS);
    expect(r.values.every(Number.isFinite)).toBe(true);
    const { classes, confidence } = await judge(r);
    const mean = confidence.reduce((a, b) => a + b, 0) / confidence.length;
    console.log(
      JSON.stringify({
        metric: 'demo-digits-sample',
        backend: r.backend,
        n: 16,
        nfe: r.nfe,
        ms: Math.round(r.ms),
        meanConfidence: +mean.toFixed(4),
        classes,
      }),
    );
    // The bar. In Node the same model and sampler give 0.855 over 128 digits (seeds 0, 1) with a per-digit sd
    // of 0.15–0.20, so a 16-digit mean has SE ≈ 0.045 and the bar sits about 1.2 SE below the expected value.
    expect(mean).toBeGreaterThanOrEqual(0.8);
    expect(r.nfe).toBe(20);
  }, 120_000);

  it('inpainting under a mask painted with the mouse keeps every known pixel exactly and fills the rest', async () => {
    const page = demo!.page;
    // Start from no mask, then drag the "hide pixels" brush across the middle of the digit, as a user would.
    await page.selectOption('#dg-digit', '1');
    await page.selectOption('#dg-preset', 'none');
    await page.click('#dg-preset-apply');
    await page.selectOption('#dg-brush', 'hide');
    const box = (await page.locator('canvas[data-name="digits-inpaint-input"]').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.15, box.y + box.height * 0.5);
    await page.mouse.down();
    for (let k = 1; k <= 12; k++)
      await page.mouse.move(box.x + box.width * (0.15 + 0.06 * k), box.y + box.height * 0.5);
    await page.mouse.up();
    // No mask in the call: the panel's painted one is used.
    const r = await call('inpaint', { digit: 1, method: 'projection', n: 2, seed: 0 });
    const { image, mask } = r as Required<Returned>;
    const hidden = mask.filter((m) => m === 0).length;
    // A 1.5-pixel brush dragged over 72 % of the width hides a band 2–3 rows high and ~20 columns long.
    expect(hidden).toBeGreaterThan(30);
    expect(hidden).toBeLessThan(120);
    let changedHidden = 0;
    for (let k = 0; k < 2; k++) {
      for (let i = 0; i < PIXELS; i++) {
        const v = r.values[k * PIXELS + i];
        // Exact: the VE SDE's mean is y itself (α = 1) and the merge is x·(1 − m) + y·m with m ∈ {0, 1}, both exact
        // in float32; the page's digit is float32 already, so no rounding on the way in or out either.
        if (mask[i] === 1) expect(v, `sample ${k} pixel ${i}`).toBe(image[i]);
        else if (Math.abs(v - image[i]) > 1e-3) changedHidden++;
      }
    }
    // The hidden pixels were generated (y is 0 there, the digit is not): somewhere they differ from the digit.
    expect(changedHidden).toBeGreaterThan(0);
    expect(r.residual!.every((e) => e < 1e-5)).toBe(true);
    console.log(JSON.stringify({ metric: 'demo-digits-inpaint', hidden, nfe: r.nfe, ms: Math.round(r.ms) }));
  }, 120_000);

  it('class guidance gives the requested digit far more often than chance', async () => {
    const n = 12;
    const label = 3;
    const r = await call('guided', { label, scale: 4, n, steps: 20, seed: 0 });
    const { classes } = await judge(r);
    const agree = classes.filter((c) => c === label).length;
    // Null hypothesis: guidance does nothing, so the clean classifier names `label` as often as among unconditional
    // samples — at most 0.15 for any class (BENCHMARKS.md: the largest class share of 250 samples is 32/250 = 0.128).
    // k is the smallest count that chance reaches with probability ≤ 1e-3.
    let k = 0;
    while (binomialTail(n, 0.15, k) > 1e-3) k++;
    console.log(
      JSON.stringify({
        metric: 'demo-digits-guided',
        label,
        scale: 4,
        n,
        agree,
        bound: k,
        nfe: r.nfe,
        ms: Math.round(r.ms),
        classes,
      }),
    );
    expect(agree).toBeGreaterThanOrEqual(k);
  }, 180_000);

  it('sparse-view CT runs and returns a reconstruction consistent with the sinogram', async () => {
    const r = await call('ct', { digit: 1, views: 8, steps: 10, seed: 0 });
    expect(r.shape).toEqual([1, 28, 28, 1]);
    expect(r.values.every(Number.isFinite)).toBe(true);
    const norm = Math.hypot(...r.sinogram!);
    expect(norm).toBeGreaterThan(1);
    // λ-projection ends with the hard merge x ← x + A⁺(y − A x): A x = y up to float32 matMul rounding.
    expect(r.residual).toHaveLength(1);
    expect(r.residual![0]).toBeLessThan(1e-3 * norm);
    console.log(
      JSON.stringify({
        metric: 'demo-digits-ct',
        views: 8,
        residual: r.residual![0],
        sinogramNorm: +norm.toFixed(2),
        psnr: (r as unknown as { psnr: number }).psnr,
        psnrFbp: (r as unknown as { psnrFbp: number }).psnrFbp,
        nfe: r.nfe,
        ms: Math.round(r.ms),
      }),
    );
  }, 180_000);

  it('draws every digits canvas, shows no errors, and leaves a screenshot', async () => {
    const canvases = await demo!.page.evaluate(() => window.sbmDemo.canvases());
    for (const name of [
      'digits-samples',
      'digits-inpaint-input',
      'digits-inpaint',
      'digits-guided',
      'digits-ct-sinogram',
      'digits-ct-fbp',
      'digits-ct',
    ]) {
      expect(canvases[name]?.inked ?? 0, name).toBeGreaterThan(20);
    }
    const shown = await demo!.page.evaluate(() => window.sbmDemo.errors);
    expect(shown).toEqual([]);
    expect(demo!.errors).toEqual([]);
    await screenshot(demo!.page, 'digits-wasm');
  });

  for (const backend of FIGURE_BACKENDS) {
    it(`figure: 16 digits on ${backend} (warm)`, async () => {
      const info = await demo!.page.evaluate((b) => window.sbmDemo.setBackend(b), backend);
      expect(info.backend).toBe(backend);
      await call('sample', { n: 16, seed: 0 });
      const r = await call('sample', { n: 16, seed: 0 });
      const { confidence } = await judge(r);
      const mean = confidence.reduce((a, b) => a + b, 0) / 16;
      console.log(
        JSON.stringify({
          metric: 'demo-digits-16',
          backend: r.backend,
          nfe: r.nfe,
          seconds: +(r.ms / 1000).toFixed(2),
          meanConfidence: +mean.toFixed(4),
        }),
      );
      await screenshot(demo!.page, `digits-${backend}`);
    }, 600_000);
  }
});
