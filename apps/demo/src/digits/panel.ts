import type { DemoClient } from '../client';
import type { SbmDemoHook } from '../hook';
import { el, labelled, numberInput as num, type ShowError } from '../ui';
// The noise-conditional classifier ships inside @sbm/mnist-eval; `?url` makes the build emit that very file as an
// asset of the site (no second copy in the repository, nothing fetched from elsewhere).
import classifierAsset from '../../../../packages/mnist-eval/weights/noisy-classifier.safetensors?url';

/*
 * The Digits panel's page side: controls, canvases and window.sbmDemo.digits. All compute is a request to the worker
 * (src/digits/handlers.ts); this file draws what comes back and keeps the digit and the painted mask.
 */

const SIZE = 28;
const PIXELS = SIZE * SIZE;
const MODEL_FILE = 'models/mnist-scorenet-f16.safetensors';
const DIGITS_FILE = 'models/mnist-test-digits.json';

/** A worker answer with the samples as one flat array. */
interface Samples {
  shape: number[];
  values: Float32Array;
  nfe: number;
  ms: number;
  backend: string;
  [key: string]: unknown;
}

interface ModelSummary {
  url: string;
  bytes: number;
  model: string;
  params: number;
  sde: { name: string; [k: string]: unknown };
  step: number;
  weights: string;
  dtype: string;
  classifier: boolean;
  ms: number;
  backend: string;
}

interface TestDigits {
  labels: number[];
  indices: number[];
  images: Float32Array[];
}

function pixelCanvas(name: string, width: number, height: number, cssScale: number): HTMLCanvasElement {
  const c = el('canvas', { 'data-name': name, width: String(width), height: String(height) });
  c.style.width = `${width * cssScale}px`;
  c.style.height = `${height * cssScale}px`;
  c.style.imageRendering = 'pixelated';
  return c;
}

/** Gray values in [lo, hi] (clipped) onto the canvas at (x0, y0), white ink on black as MNIST. */
function putGray(
  ctx: CanvasRenderingContext2D,
  values: ArrayLike<number>,
  offset: number,
  w: number,
  h: number,
  x0: number,
  y0: number,
  lo = 0,
  hi = 1,
  tint?: (i: number) => [number, number, number] | undefined,
): void {
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, (values[offset + i] - lo) / (hi - lo || 1))));
    const t = tint?.(i);
    img.data.set(
      t ? [Math.round((v + t[0]) / 2), Math.round((v + t[1]) / 2), Math.round((v + t[2]) / 2), 255] : [v, v, v, 255],
      i * 4,
    );
  }
  ctx.putImageData(img, x0, y0);
}

/** n digits [n, 28, 28, 1] as a grid, `cols` wide, one pixel of gap (dark gray) between them. */
function drawGrid(canvas: HTMLCanvasElement, values: ArrayLike<number>, n: number, cols: number): void {
  const rows = Math.ceil(n / cols);
  canvas.width = cols * (SIZE + 1) + 1;
  canvas.height = rows * (SIZE + 1) + 1;
  const scale = Math.max(2, Math.floor(288 / canvas.width));
  canvas.style.width = `${canvas.width * scale}px`;
  canvas.style.height = `${canvas.height * scale}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#444';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let k = 0; k < n; k++) {
    putGray(ctx, values, k * PIXELS, SIZE, SIZE, 1 + (k % cols) * (SIZE + 1), 1 + Math.floor(k / cols) * (SIZE + 1));
  }
}

/** Seeded mask presets (1 = known): what a user would otherwise paint. */
function presetMask(name: string, seed = 0): Float32Array {
  const m = new Float32Array(PIXELS).fill(1);
  const at = (r: number, c: number) => r * SIZE + c;
  if (name === 'center-box') {
    for (let r = 7; r < 21; r++) for (let c = 7; c < 21; c++) m[at(r, c)] = 0;
  } else if (name === 'left-half') {
    for (let r = 0; r < SIZE; r++) for (let c = 0; c < SIZE / 2; c++) m[at(r, c)] = 0;
  } else if (name === 'bottom-half') {
    for (let r = SIZE / 2; r < SIZE; r++) for (let c = 0; c < SIZE; c++) m[at(r, c)] = 0;
  } else if (name === 'random') {
    // 70 % missing, a seeded Fisher–Yates shuffle (mulberry32), as namedMask('random') draws its pixels.
    let s = seed >>> 0;
    const rand = () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const idx = Array.from({ length: PIXELS }, (_, i) => i);
    for (let i = PIXELS - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    for (let k = 0; k < Math.round(0.7 * PIXELS); k++) m[idx[k]] = 0;
  } else if (name !== 'none') {
    throw new Error(`mask: expected center-box, left-half, bottom-half, random or none, got "${name}"`);
  }
  return m;
}

function psnr(a: ArrayLike<number>, b: ArrayLike<number>, offset = 0): number {
  let se = 0;
  for (let i = 0; i < PIXELS; i++) {
    const d = Math.min(1, Math.max(0, a[offset + i])) - b[i];
    se += d * d;
  }
  return 10 * Math.log10(1 / Math.max(se / PIXELS, 1e-12));
}

function decodeDigits(json: { labels: number[]; indices: number[]; shape: number[]; pixels: string }): TestDigits {
  const raw = Uint8Array.from(atob(json.pixels), (ch) => ch.charCodeAt(0));
  const n = json.shape[0];
  if (raw.length !== n * PIXELS) throw new Error(`${DIGITS_FILE}: expected ${n * PIXELS} bytes, got ${raw.length}`);
  const images = Array.from({ length: n }, (_, k) =>
    Float32Array.from(raw.subarray(k * PIXELS, (k + 1) * PIXELS), (v) => v / 255),
  );
  return { labels: json.labels, indices: json.indices, images };
}

const plain = (r: Samples) => ({ ...r, values: Array.from(r.values) });

/** Builds the Digits tab inside `root`; fills `hook.digits` with its test hook. */
export function mountDigits(root: HTMLElement, client: DemoClient, hook: SbmDemoHook, showError?: ShowError): void {
  const report: ShowError =
    showError ??
    ((context, e) => {
      const code = (e as { code?: string })?.code;
      const msg = `${context}: ${e instanceof Error ? e.message : String(e)}${code ? ` [${code}]` : ''}`;
      hook.errors.push(msg);
      document.querySelector('#errors')?.append(el('p', {}, msg));
      return msg;
    });
  const abs = (file: string) => new URL(file, document.baseURI).href;

  // ---- model card
  const modelStatus = el('span', { id: 'dg-model-status' }, 'not loaded');
  const stopBtn = el('button', { id: 'dg-stop', type: 'button', disabled: '' }, 'Stop');
  const modelBar = el('progress', { id: 'dg-model-progress', max: '1', value: '0' });
  const modelCard = el(
    'div',
    { class: 'card' },
    el('h2', {}, 'MNIST score model'),
    el('div', {}, modelBar, ' ', modelStatus, ' ', stopBtn),
    el(
      'p',
      { class: 'muted' },
      'Tutorial-VE ScoreNet trained with `sbm train` (see BENCHMARKS.md), EMA weights, stored as a float16 sbm model file ' +
        'and fetched from this site. Guidance uses the noise-conditional classifier shipped in @sbm/mnist-eval.',
    ),
  );

  // ---- sample card
  const samplerSel = el('select', { id: 'dg-sampler' }, el('option', { value: 'dpmpp-3m-sde' }, 'dpmpp-3m-sde'));
  const stepsIn = num('dg-steps', 19, { min: '1', max: '2000' });
  const nIn = num('dg-n', 16, { min: '1', max: '64' });
  const seedIn = num('dg-seed', 0, { min: '0' });
  const sampleBtn = el('button', { id: 'dg-sample', type: 'button' }, 'Sample');
  const sampleBar = el('progress', { id: 'dg-sample-progress', max: '1', value: '0' });
  const sampleInfo = el('div', { class: 'muted', id: 'dg-sample-info' });
  const cSamples = pixelCanvas('digits-samples', 4 * (SIZE + 1) + 1, 4 * (SIZE + 1) + 1, 2);
  const sampleCard = el(
    'div',
    { class: 'card' },
    el('h2', {}, 'Sample'),
    el(
      'div',
      { class: 'controls' },
      labelled('sampler', samplerSel),
      labelled('steps', stepsIn),
      labelled('digits', nIn),
      labelled('seed', seedIn),
    ),
    el('div', {}, sampleBtn, ' ', sampleBar),
    cSamples,
    sampleInfo,
  );

  // ---- inpaint card
  const digitSel = el('select', { id: 'dg-digit' });
  const brushSel = el(
    'select',
    { id: 'dg-brush' },
    el('option', { value: 'hide' }, 'paint mask (hide pixels)'),
    el('option', { value: 'show' }, 'unpaint mask'),
    el('option', { value: 'ink' }, 'draw ink'),
    el('option', { value: 'erase' }, 'erase ink'),
  );
  const presetSel = el(
    'select',
    { id: 'dg-preset' },
    ...['center-box', 'left-half', 'bottom-half', 'random', 'none'].map((p) => el('option', { value: p }, p)),
  );
  const presetBtn = el('button', { type: 'button', id: 'dg-preset-apply' }, 'Apply mask');
  const blankBtn = el('button', { type: 'button', id: 'dg-blank' }, 'Blank digit (draw your own)');
  const methodSel = el(
    'select',
    { id: 'dg-method' },
    el('option', { value: 'projection' }, 'projection (30 steps)'),
    el('option', { value: 'repaint' }, 'RePaint (20 steps, jump 5 × 3)'),
  );
  const inpaintBtn = el('button', { id: 'dg-inpaint', type: 'button' }, 'Inpaint');
  const inpaintBar = el('progress', { id: 'dg-inpaint-progress', max: '1', value: '0' });
  const inpaintInfo = el('div', { class: 'muted', id: 'dg-inpaint-info' });
  const cInput = pixelCanvas('digits-inpaint-input', SIZE, SIZE, 8);
  cInput.style.cursor = 'crosshair';
  cInput.style.touchAction = 'none';
  const cInpaint = pixelCanvas('digits-inpaint', 2 * (SIZE + 1) + 1, 2 * (SIZE + 1) + 1, 4);
  const inpaintCard = el(
    'div',
    { class: 'card' },
    el('h2', {}, 'Inpaint'),
    el(
      'div',
      { class: 'controls' },
      labelled('test digit', digitSel),
      blankBtn,
      labelled('brush', brushSel),
      el('div', {}, labelled('mask', presetSel), presetBtn),
      labelled('method', methodSel),
    ),
    el('div', { class: 'row' }, cInput, cInpaint),
    el('p', { class: 'muted' }, 'Paint on the digit: red pixels are hidden from the model; the rest are kept exactly.'),
    el('div', {}, inpaintBtn, ' ', inpaintBar),
    inpaintInfo,
  );

  // ---- guided card
  const labelSel = el(
    'select',
    { id: 'dg-label' },
    ...Array.from({ length: 10 }, (_, d) => el('option', { value: String(d) }, String(d))),
  );
  const scaleIn = el('input', { id: 'dg-scale', type: 'range', min: '0', max: '10', step: '0.5', value: '4' });
  const scaleOut = el('span', { id: 'dg-scale-value' }, '4');
  const guidedBtn = el('button', { id: 'dg-guided', type: 'button' }, 'Generate');
  const guidedBar = el('progress', { id: 'dg-guided-progress', max: '1', value: '0' });
  const guidedInfo = el('div', { class: 'muted', id: 'dg-guided-info' });
  const cGuided = pixelCanvas('digits-guided', 4 * (SIZE + 1) + 1, 2 * (SIZE + 1) + 1, 2);
  const guidedCard = el(
    'div',
    { class: 'card' },
    el('h2', {}, 'Class-guided generation'),
    el(
      'div',
      { class: 'controls' },
      labelled('digit', labelSel),
      el('label', {}, 'guidance scale ', scaleIn, ' ', scaleOut),
    ),
    el('div', {}, guidedBtn, ' ', guidedBar),
    cGuided,
    guidedInfo,
  );

  // ---- CT card
  const viewsIn = el('input', { id: 'dg-views', type: 'range', min: '1', max: '16', step: '1', value: '8' });
  const viewsOut = el('span', { id: 'dg-views-value' }, '8');
  const ctBtn = el('button', { id: 'dg-ct', type: 'button' }, 'Reconstruct');
  const ctBar = el('progress', { id: 'dg-ct-progress', max: '1', value: '0' });
  const ctInfo = el('div', { class: 'muted', id: 'dg-ct-info' });
  const cSino = pixelCanvas('digits-ct-sinogram', 40, 8, 4);
  const cFbp = pixelCanvas('digits-ct-fbp', SIZE, SIZE, 4);
  const cCt = pixelCanvas('digits-ct', SIZE, SIZE, 4);
  const ctCard = el(
    'div',
    { class: 'card' },
    el('h2', {}, 'Sparse-view CT'),
    el('div', { class: 'controls' }, el('label', {}, 'views ', viewsIn, ' ', viewsOut)),
    el(
      'p',
      { class: 'muted' },
      'Of the inpainting digit: its parallel-beam sinogram, filtered back-projection, and λ-projection with the score model.',
    ),
    el('div', {}, ctBtn, ' ', ctBar),
    el(
      'div',
      { class: 'row' },
      el('div', {}, 'sinogram', cSino),
      el('div', {}, 'FBP', cFbp),
      el('div', {}, 'score model', cCt),
    ),
    ctInfo,
  );

  root.append(el('div', { class: 'row' }, modelCard, sampleCard, inpaintCard, guidedCard, ctCard));

  // ---- state
  let digits: TestDigits | undefined;
  let image: Float32Array = new Float32Array(PIXELS);
  let mask: Float32Array = presetMask('center-box');

  function drawInput(): void {
    const ctx = cInput.getContext('2d')!;
    putGray(ctx, image, 0, SIZE, SIZE, 0, 0, 0, 1, (i) => (mask[i] === 0 ? [230, 40, 40] : undefined));
  }

  function progressTo(bar: HTMLProgressElement) {
    return (d: { phase?: string; step?: number; steps?: number; loaded?: number; total?: number }) => {
      if (d.phase === 'sample' && d.steps) bar.value = d.step! / d.steps;
      else if (d.phase === 'download' && d.total) bar.value = d.loaded! / d.total;
    };
  }

  let loading: Promise<ModelSummary> | undefined;
  function load(): Promise<ModelSummary> {
    loading ??= (async () => {
      modelStatus.textContent = 'downloading…';
      const [summary, json] = await Promise.all([
        request<ModelSummary>(
          'digits:load',
          { modelUrl: abs(MODEL_FILE), classifierUrl: new URL(classifierAsset, document.baseURI).href },
          progressTo(modelBar),
        ),
        fetch(abs(DIGITS_FILE)).then((r) => {
          if (!r.ok) throw new Error(`${DIGITS_FILE}: ${r.status} ${r.statusText}`);
          return r.json();
        }),
      ]);
      modelBar.value = 1;
      modelStatus.textContent =
        `${summary.model}, ${summary.params.toLocaleString()} parameters, step ${summary.step}, ${summary.weights} weights, ` +
        `${summary.dtype} (${(summary.bytes / 1e6).toFixed(2)} MB), ${summary.sde.name} SDE — loaded in ${(summary.ms / 1000).toFixed(1)} s on ${summary.backend}`;
      digits = decodeDigits(json);
      digitSel.replaceChildren(
        ...digits.labels.map((l, k) => el('option', { value: String(k) }, `#${digits!.indices[k]} (a ${l})`)),
      );
      image = digits.images[0].slice();
      drawInput();
      const opts = await client.request<{ samplers: string[]; defaultSampler: string }>('digits:options');
      samplerSel.replaceChildren(...opts.samplers.map((s) => el('option', { value: s }, s)));
      samplerSel.value = opts.defaultSampler;
      return summary;
    })().catch((e) => {
      loading = undefined;
      modelStatus.textContent = 'failed to load';
      throw e;
    });
    return loading;
  }

  /** Requests of this panel in flight (the Stop button cancels them, not the playground's training). */
  const running = new Set<number>();
  function request<T>(type: string, payload: unknown, onProgress?: (d: any) => void): Promise<T> {
    const p = client.request<T>(type, payload, onProgress ? { onProgress } : {});
    const id = client.lastId;
    running.add(id);
    stopBtn.disabled = false;
    return p.finally(() => {
      running.delete(id);
      stopBtn.disabled = running.size === 0;
    });
  }
  stopBtn.addEventListener('click', () => {
    for (const id of running) client.cancel(id);
  });

  /** Runs one action: disables its button, reports errors on the page, rethrows for the hook's caller. */
  async function act<T>(what: string, button: HTMLButtonElement, fn: () => Promise<T>): Promise<T> {
    button.disabled = true;
    try {
      await load();
      return await fn();
    } catch (e) {
      report(`digits ${what}`, e);
      throw e;
    } finally {
      button.disabled = false;
    }
  }

  const intOf = (input: HTMLInputElement) => Number(input.value);

  function resolveImage(opts: { digit?: number; image?: ArrayLike<number> }): Float32Array {
    if (opts.image !== undefined) return Float32Array.from(opts.image);
    if (opts.digit !== undefined) {
      const img = digits!.images[opts.digit];
      if (!img) throw new Error(`digit: expected an index in [0, ${digits!.images.length - 1}], got ${opts.digit}`);
      digitSel.value = String(opts.digit);
      return img.slice();
    }
    return image;
  }

  async function doSample(opts: { sampler?: string; steps?: number; n?: number; seed?: number } = {}) {
    return act('sample', sampleBtn, async () => {
      const payload = {
        sampler: opts.sampler ?? samplerSel.value,
        steps: opts.steps ?? intOf(stepsIn),
        n: opts.n ?? intOf(nIn),
        seed: opts.seed ?? intOf(seedIn),
      };
      sampleBar.value = 0;
      const r = await request<Samples>('digits:sample', payload, progressTo(sampleBar));
      drawGrid(cSamples, r.values, r.shape[0], Math.ceil(Math.sqrt(r.shape[0])));
      sampleInfo.textContent = `${r.shape[0]} digits, ${payload.sampler}, ${payload.steps} steps (${r.nfe} NFE): ${(r.ms / 1000).toFixed(1)} s on ${r.backend}`;
      return plain(r);
    });
  }

  async function doInpaint(
    opts: {
      digit?: number;
      image?: number[];
      mask?: number[] | string;
      method?: string;
      n?: number;
      steps?: number;
      seed?: number;
    } = {},
  ) {
    return act('inpaint', inpaintBtn, async () => {
      image = resolveImage(opts);
      if (typeof opts.mask === 'string') mask = presetMask(opts.mask);
      else if (opts.mask !== undefined) mask = Float32Array.from(opts.mask);
      drawInput();
      const method = opts.method ?? methodSel.value;
      inpaintBar.value = 0;
      const r = await request<Samples & { residual: number[] }>(
        'digits:inpaint',
        {
          image,
          mask,
          method,
          n: opts.n ?? 4,
          seed: opts.seed ?? intOf(seedIn),
          ...(opts.steps ? { steps: opts.steps } : {}),
        },
        progressTo(inpaintBar),
      );
      drawGrid(cInpaint, r.values, r.shape[0], 2);
      const hidden = mask.reduce((a, m) => a + (1 - m), 0);
      inpaintInfo.textContent =
        `${method}: ${hidden} of ${PIXELS} pixels hidden, ${r.nfe} NFE, ${(r.ms / 1000).toFixed(1)} s on ${r.backend}; ` +
        `PSNR to the digit ${psnr(r.values, image).toFixed(1)} dB (first completion)`;
      return { ...plain(r), image: Array.from(image), mask: Array.from(mask) };
    });
  }

  async function doGuided(opts: { label?: number; scale?: number; n?: number; steps?: number; seed?: number } = {}) {
    return act('guided', guidedBtn, async () => {
      const label = opts.label ?? Number(labelSel.value);
      const scale = opts.scale ?? Number(scaleIn.value);
      labelSel.value = String(label);
      scaleIn.value = String(scale);
      scaleOut.textContent = String(scale);
      guidedBar.value = 0;
      const r = await request<Samples>(
        'digits:guided',
        {
          label,
          scale,
          n: opts.n ?? 8,
          seed: opts.seed ?? intOf(seedIn),
          ...(opts.steps ? { steps: opts.steps } : {}),
        },
        progressTo(guidedBar),
      );
      drawGrid(cGuided, r.values, r.shape[0], 4);
      guidedInfo.textContent = `${r.shape[0]} digits asked to be ${label} at scale ${scale}: ${r.nfe} NFE, ${(r.ms / 1000).toFixed(1)} s on ${r.backend}`;
      return plain(r);
    });
  }

  async function doCt(opts: { digit?: number; image?: number[]; views?: number; steps?: number; seed?: number } = {}) {
    return act('ct', ctBtn, async () => {
      image = resolveImage(opts);
      drawInput();
      const views = opts.views ?? Number(viewsIn.value);
      viewsIn.value = String(views);
      viewsOut.textContent = String(views);
      ctBar.value = 0;
      const r = await request<
        Samples & { residual: number[]; sinogram: Float32Array; sinogramShape: number[]; fbp: Float32Array }
      >(
        'digits:ct',
        { image, views, seed: opts.seed ?? intOf(seedIn), ...(opts.steps ? { steps: opts.steps } : {}) },
        progressTo(ctBar),
      );
      const [v, d] = r.sinogramShape;
      cSino.width = d;
      cSino.height = v;
      cSino.style.width = `${d * 4}px`;
      cSino.style.height = `${v * 4}px`;
      let hi = 0;
      for (const s of r.sinogram) hi = Math.max(hi, s);
      putGray(cSino.getContext('2d')!, r.sinogram, 0, d, v, 0, 0, 0, hi);
      putGray(cFbp.getContext('2d')!, r.fbp, 0, SIZE, SIZE, 0, 0);
      putGray(cCt.getContext('2d')!, r.values, 0, SIZE, SIZE, 0, 0);
      const p = psnr(r.values, image);
      const pFbp = psnr(r.fbp, image);
      ctInfo.textContent =
        `${views} views: PSNR ${p.toFixed(1)} dB (FBP ${pFbp.toFixed(1)} dB), ‖Ax − y‖ = ${r.residual[0].toExponential(2)}, ` +
        `${r.nfe} NFE, ${(r.ms / 1000).toFixed(1)} s on ${r.backend}`;
      return {
        ...plain(r),
        sinogram: Array.from(r.sinogram),
        fbp: Array.from(r.fbp),
        image: Array.from(image),
        psnr: p,
        psnrFbp: pFbp,
      };
    });
  }

  // ---- events
  const quiet = (p: Promise<unknown>) => void p.catch(() => undefined);
  sampleBtn.addEventListener('click', () => quiet(doSample()));
  inpaintBtn.addEventListener('click', () => quiet(doInpaint()));
  guidedBtn.addEventListener('click', () => quiet(doGuided()));
  ctBtn.addEventListener('click', () => quiet(doCt()));
  scaleIn.addEventListener('input', () => (scaleOut.textContent = scaleIn.value));
  viewsIn.addEventListener('input', () => (viewsOut.textContent = viewsIn.value));
  digitSel.addEventListener('change', () => {
    if (!digits) return;
    image = digits.images[Number(digitSel.value)].slice();
    drawInput();
  });
  blankBtn.addEventListener('click', () => {
    image = new Float32Array(PIXELS);
    mask = presetMask('none');
    brushSel.value = 'ink';
    drawInput();
  });
  presetBtn.addEventListener('click', () => {
    mask = presetMask(presetSel.value);
    drawInput();
  });
  const paint = (ev: PointerEvent) => {
    const r = cInput.getBoundingClientRect();
    const cx = ((ev.clientX - r.left) / r.width) * SIZE;
    const cy = ((ev.clientY - r.top) / r.height) * SIZE;
    const brush = brushSel.value;
    // A round brush of radius 1.5 pixels; ink is soft at the rim, as a pen stroke on MNIST's anti-aliased digits.
    for (let y = Math.floor(cy - 2); y <= Math.ceil(cy + 2); y++) {
      for (let x = Math.floor(cx - 2); x <= Math.ceil(cx + 2); x++) {
        if (x < 0 || y < 0 || x >= SIZE || y >= SIZE) continue;
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        if (d > 1.5) continue;
        const i = y * SIZE + x;
        if (brush === 'hide') mask[i] = 0;
        else if (brush === 'show') mask[i] = 1;
        else if (brush === 'ink') image[i] = Math.max(image[i], d < 0.9 ? 1 : 0.6);
        else image[i] = 0;
      }
    }
    drawInput();
  };
  cInput.addEventListener('pointerdown', (ev) => {
    cInput.setPointerCapture(ev.pointerId);
    paint(ev);
  });
  cInput.addEventListener('pointermove', (ev) => {
    if (ev.buttons & 1) paint(ev);
  });
  // Loading starts when the tab is first opened (or on the first hook call): the 2-D playground's cold start does not
  // wait for 2.4 MB it may never use.
  document
    .querySelector('nav [data-tab="digits"]')
    ?.addEventListener('click', () => quiet(load().catch((e) => report('digits load', e))));
  drawInput();

  hook.digits = {
    load: () => load().catch((e) => Promise.reject(new Error(report('digits load', e)))),
    testDigits: async () => {
      await load();
      return { labels: digits!.labels, indices: digits!.indices, images: digits!.images.map((d) => Array.from(d)) };
    },
    sample: doSample,
    inpaint: doInpaint,
    guided: doGuided,
    ct: doCt,
  };
}
