import type { DemoClient } from '../client';
import type {
  DataChoice,
  PlainArray,
  SampleOptions,
  SampleSummary,
  SbmDemoHook,
  TrainOptions,
  TrainSummary,
} from '../hook';
import { el, labelled, numberInput, type ShowError } from '../ui';
import { COLORS, arrows, caption, clear, dots, heatmap, lossCurve, scatter, toData } from './view';

/*
 * The 2-D playground's page side: controls, canvases and the hook's actions. All compute is a request to the worker
 * (src/playground/handlers.ts); this file only draws what comes back, so the page stays responsive while training.
 */

const DRAW = '(draw by hand)';

function canvas(name: string, cls = 'square', size = 280): HTMLCanvasElement {
  return el('canvas', { 'data-name': name, class: cls, width: String(size), height: String(size) });
}

/** ' · ve σ 0.01–4.03' (the parameters a run used; VE's σ_max is the data's diameter). */
function sdeLabel(c: Record<string, unknown> | undefined): string {
  if (!c) return '';
  const n = (k: string) => (typeof c[k] === 'number' ? Number((c[k] as number).toPrecision(3)) : undefined);
  if (n('sigmaMax') !== undefined) return ` · ${String(c.name)} σ ${n('sigmaMin')}–${n('sigmaMax')}`;
  if (n('betaMax') !== undefined) return ` · ${String(c.name)} β ${n('betaMin')}–${n('betaMax')}`;
  return ` · ${String(c.name)}`;
}

function select(id: string, options: string[], value?: string): HTMLSelectElement {
  const s = el('select', { id });
  setOptions(s, options, value);
  return s;
}

function setOptions(s: HTMLSelectElement, options: string[], value?: string): void {
  s.replaceChildren(...options.map((o) => el('option', { value: o }, o)));
  if (value && options.includes(value)) s.value = value;
}

interface Frames {
  forward: Float32Array[];
  reverse: Float32Array[];
  ode: Float32Array[];
}

export interface PlaygroundHandle {
  /** Loads the registries' names and the default data; resolves when the data is drawn. */
  start(): Promise<void>;
  /** The worker dropped the model (backend switch). */
  backendChanged(): void;
}

export function mountPlayground(
  root: HTMLElement,
  client: DemoClient,
  hook: SbmDemoHook,
  showError: ShowError,
): PlaygroundHandle {
  // Controls.
  const toySel = select('pg-toy', ['swiss-roll', DRAW]);
  const nIn = numberInput('pg-n', 2000, { min: '2', max: '100000' });
  const clearBtn = el('button', { id: 'pg-clear', type: 'button' }, 'Clear drawing');
  const sdeSel = select('pg-sde', ['ve']);
  const widthIn = numberInput('pg-width', 128, { min: '1', max: '1024' });
  const depthIn = numberInput('pg-depth', 3, { min: '1', max: '8' });
  const stepsIn = numberInput('pg-steps', 500, { min: '1' });
  const batchIn = numberInput('pg-batch', 512, { min: '1' });
  const lrIn = numberInput('pg-lr', 0.01, { step: '0.001', min: '0' });
  const trainBtn = el('button', { id: 'pg-train', type: 'button' }, 'Train');
  const stopBtn = el('button', { id: 'pg-stop', type: 'button', disabled: '' }, 'Stop');
  const followIn = el('input', { id: 'pg-follow', type: 'checkbox', checked: '' });
  const status = el('div', { id: 'pg-status', class: 'muted' }, 'not trained');
  const tIn = el('input', { id: 'pg-t', type: 'range', min: '0.01', max: '1', step: '0.01', value: '0.05' });
  const tOut = el('span', { id: 'pg-t-value' }, '0.05');
  const samplerSel = select('pg-sampler', ['pc']);
  const sStepsIn = numberInput('pg-sample-steps', 200, { min: '1' });
  const sNIn = numberInput('pg-sample-n', 1000, { min: '1' });
  const sampleBtn = el('button', { id: 'pg-sample', type: 'button' }, 'Sample');
  const sampleInfo = el('div', { id: 'pg-sample-info', class: 'muted' });
  const trajBtn = el('button', { id: 'pg-traj', type: 'button' }, 'Run trajectories');
  const frameIn = el('input', { id: 'pg-frame', type: 'range', min: '0', max: '0', value: '0' });
  const playBtn = el('button', { id: 'pg-play', type: 'button' }, 'Play');
  const sigmaIn = numberInput('pg-sigma', 0.1, { step: '0.01', min: '0' });
  const lStepsIn = numberInput('pg-langevin-steps', 200, { min: '1' });
  const langevinBtn = el('button', { id: 'pg-langevin', type: 'button' }, 'Run Langevin');
  const cellsIn = numberInput('pg-cells', 30, { min: '2', max: '200' });
  const densityBtn = el('button', { id: 'pg-density', type: 'button' }, 'Compute density');
  const densityInfo = el('div', { id: 'pg-density-info', class: 'muted' });

  const cData = canvas('data');
  const cLoss = canvas('loss', 'loss', 280);
  cLoss.height = 160;
  cLoss.style.height = '160px';
  const cScore = canvas('score');
  const cForward = canvas('forward', 'small', 220);
  const cReverse = canvas('reverse', 'small', 220);
  const cOde = canvas('ode', 'small', 220);
  const cSamples = canvas('samples');
  const cLangevin = canvas('langevin');
  const cDensity = canvas('density');

  const card = (title: string, ...children: (Node | string)[]) =>
    el('div', { class: 'card' }, el('h2', {}, title), ...children);
  root.append(
    el(
      'div',
      { class: 'row' },
      card(
        'Data',
        el(
          'div',
          { class: 'controls' },
          labelled('toy set', toySel),
          labelled('points', nIn),
          clearBtn,
          el('div', { class: 'muted' }, 'choose "draw by hand" and click or drag on the canvas'),
        ),
        cData,
      ),
      card(
        'Model and training',
        el(
          'div',
          { class: 'controls' },
          labelled('SDE', sdeSel),
          labelled('MLP width', widthIn),
          labelled('depth', depthIn),
          labelled('steps', stepsIn),
          labelled('batch', batchIn),
          labelled('learning rate', lrIn),
          labelled('then sample and animate', followIn),
          trainBtn,
          ' ',
          stopBtn,
        ),
        status,
        cLoss,
      ),
      card('Learned score ∇ log p_t', labelled('t', tIn), tOut, cScore),
    ),
    el(
      'div',
      { class: 'row' },
      card(
        'Forward SDE · reverse SDE · probability-flow ODE',
        el('div', { class: 'controls' }, trajBtn, ' ', playBtn, ' ', labelled('frame', frameIn)),
        el('div', { class: 'row' }, cForward, cReverse, cOde),
      ),
    ),
    el(
      'div',
      { class: 'row' },
      card(
        'Sampling',
        el(
          'div',
          { class: 'controls' },
          labelled('sampler', samplerSel),
          labelled('steps', sStepsIn),
          labelled('samples', sNIn),
          sampleBtn,
        ),
        sampleInfo,
        cSamples,
      ),
      card(
        'Langevin dynamics on the learned score',
        el('div', { class: 'controls' }, labelled('σ', sigmaIn), labelled('steps', lStepsIn), langevinBtn),
        cLangevin,
      ),
      card(
        'Model density (exact likelihood)',
        el('div', { class: 'controls' }, labelled('grid cells', cellsIn), densityBtn),
        densityInfo,
        cDensity,
      ),
    ),
  );

  // State.
  let data: Float32Array = new Float32Array(0);
  let drawn: number[] = [];
  let trained = false;
  let trainId: number | undefined;
  let losses: number[] = [];
  let lossSteps: number[] = [];
  let frames: Frames = { forward: [], reverse: [], ode: [] };
  let frameTimes: Record<keyof Frames, number[]> = { forward: [], reverse: [], ode: [] };
  let playing = 0;

  const drawData = () => {
    const title =
      toySel.value === DRAW ? `${drawn.length / 2} drawn points` : `${toySel.value}, ${data.length / 2} points`;
    scatter(cData, toySel.value === DRAW ? drawn : data, COLORS.data, title);
  };

  async function loadData(choice?: DataChoice): Promise<{ n: number }> {
    if (choice && 'points' in choice) {
      toySel.value = DRAW;
      drawn = choice.points.flat();
    } else if (choice) {
      toySel.value = choice.toy;
      if (choice.n !== undefined) nIn.value = String(choice.n);
    }
    if (toySel.value === DRAW) {
      drawData();
      return { n: drawn.length / 2 };
    }
    const r = await client.request<{ points: Float32Array; n: number }>('pg:data', {
      toy: toySel.value,
      n: Number(nIn.value),
      seed: choice && 'seed' in choice ? choice.seed : 0,
    });
    data = r.points;
    drawData();
    return { n: r.n };
  }

  const trainingPoints = () => (toySel.value === DRAW ? Float32Array.from(drawn) : data);

  // Hand drawing: each pointer event sprays a few points around the cursor (σ = 0.05), so a stroke is a density.
  let drawing = false;
  const spray = (ev: PointerEvent) => {
    if (toySel.value !== DRAW) return;
    const r = cData.getBoundingClientRect();
    const [x, y] = toData(cData, ev.clientX - r.left, ev.clientY - r.top);
    for (let k = 0; k < 4; k++) {
      const u = Math.max(Math.random(), 1e-12);
      const rad = 0.05 * Math.sqrt(-2 * Math.log(u));
      const a = 2 * Math.PI * Math.random();
      drawn.push(x + rad * Math.cos(a), y + rad * Math.sin(a));
    }
    drawData();
  };
  cData.addEventListener('pointerdown', (ev) => {
    drawing = true;
    spray(ev);
  });
  cData.addEventListener('pointermove', (ev) => drawing && spray(ev));
  window.addEventListener('pointerup', () => (drawing = false));
  clearBtn.addEventListener('click', () => {
    drawn = [];
    drawData();
  });
  toySel.addEventListener('change', () => void loadData().catch((e) => showError('data', e)));
  nIn.addEventListener('change', () => void loadData().catch((e) => showError('data', e)));

  const drawLoss = () => lossCurve(cLoss, lossSteps, losses, 'DSM loss (log scale, running mean of 20)');
  let lossFrame = 0;

  async function startTraining(opts: TrainOptions = {}): Promise<TrainSummary> {
    if (trainId !== undefined) throw new Error('training: a run is in progress (stop it first)');
    const width = Number(widthIn.value);
    const hidden = opts.hidden ?? Array.from({ length: Number(depthIn.value) }, () => width);
    const payload = {
      points: trainingPoints(),
      sde: opts.sde ?? sdeSel.value,
      hidden,
      steps: opts.steps ?? Number(stepsIn.value),
      batchSize: opts.batchSize ?? Number(batchIn.value),
      lr: opts.lr ?? Number(lrIn.value),
      seed: opts.seed ?? 0,
    };
    if (opts.sde) sdeSel.value = opts.sde;
    if (opts.steps) stepsIn.value = String(opts.steps);
    losses = [];
    lossSteps = [];
    trained = false;
    hook.training = { step: 0, loss: null, running: true, stepsPerSec: null, steps: payload.steps };
    trainBtn.disabled = true;
    stopBtn.disabled = false;
    status.textContent = `training ${payload.steps} steps on ${hook.backend}…`;
    try {
      const req = client.request<TrainSummary & { losses: Float32Array; sde?: Record<string, unknown> }>(
        'pg:train',
        payload,
        {
          onProgress: (p: { step: number; steps: number; loss: number; stepsPerSec: number }) => {
            hook.training = { step: p.step, loss: p.loss, running: true, stepsPerSec: p.stepsPerSec, steps: p.steps };
            losses.push(p.loss);
            lossSteps.push(p.step);
            status.textContent = `step ${p.step}/${p.steps} · loss ${p.loss.toFixed(3)} · ${p.stepsPerSec.toFixed(1)} steps/s`;
            if (!lossFrame) {
              lossFrame = requestAnimationFrame(() => {
                lossFrame = 0;
                drawLoss();
              });
            }
          },
        },
      );
      trainId = client.lastId;
      const r = await req;
      losses = Array.from(r.losses);
      lossSteps = losses.map((_, i) => r.step - losses.length + i + 1);
      drawLoss();
      trained = true;
      hook.training = {
        step: r.step,
        loss: r.finalLoss,
        running: false,
        stepsPerSec: r.stepsPerSec,
        steps: payload.steps,
      };
      status.textContent =
        `${r.aborted ? 'stopped at' : 'trained'} step ${r.step} · loss ${r.finalLoss.toFixed(3)} · ` +
        `${r.stepsPerSec.toFixed(1)} steps/s on ${r.backend}${sdeLabel(r.sde)}`;
      const { losses: _l, sde: _s, ...summary } = r;
      await scoreField();
      if (opts.followUp ?? followIn.checked) {
        await sampleNow();
        await trajectories();
      }
      return summary;
    } catch (e) {
      hook.training = { ...hook.training, running: false };
      status.textContent = 'training failed';
      showError('training', e);
      throw e;
    } finally {
      trainId = undefined;
      trainBtn.disabled = false;
      stopBtn.disabled = true;
    }
  }

  async function stopTraining(): Promise<void> {
    if (trainId !== undefined) client.cancel(trainId);
  }

  async function scoreField(opts: { t?: number } = {}): Promise<{ t: number; cells: number }> {
    const t = opts.t ?? Number(tIn.value);
    tIn.value = String(t);
    tOut.textContent = t.toFixed(2);
    const r = await client.request<{ t: number; cells: number; grid: Float32Array; vectors: Float32Array }>(
      'pg:field',
      { t, cells: 21 },
    );
    arrows(cScore, r.grid, r.vectors, r.cells, trainingPoints(), `learned score at t = ${r.t.toFixed(2)}`);
    return { t: r.t, cells: r.cells };
  }

  async function sampleNow(opts: SampleOptions = {}): Promise<SampleSummary> {
    if (opts.sampler) samplerSel.value = opts.sampler;
    if (opts.steps) sStepsIn.value = String(opts.steps);
    if (opts.n) sNIn.value = String(opts.n);
    const r = await client.request<{ sampler: string; points: Float32Array; nfe: number; ms: number }>(
      'pg:sample',
      {
        sampler: opts.sampler ?? samplerSel.value,
        steps: opts.steps ?? Number(sStepsIn.value),
        n: opts.n ?? Number(sNIn.value),
        seed: opts.seed ?? 0,
      },
      { onProgress: (p: { step: number; steps: number }) => (sampleInfo.textContent = `step ${p.step}/${p.steps}`) },
    );
    const ctx = clear(cSamples);
    ctx.globalAlpha = 0.25;
    dots(cSamples, ctx, trainingPoints(), COLORS.data, 1);
    ctx.globalAlpha = 1;
    dots(cSamples, ctx, r.points, COLORS.samples);
    caption(ctx, `${r.sampler}: ${r.points.length / 2} samples (red) over the data (blue)`);
    sampleInfo.textContent = `${r.sampler} · ${r.nfe} NFE · ${r.ms.toFixed(0)} ms`;
    const summary: SampleSummary = {
      sampler: r.sampler,
      nfe: r.nfe,
      ms: r.ms,
      shape: [r.points.length / 2, 2],
      values: Array.from(r.points),
    };
    hook.lastSamples = summary;
    return summary;
  }

  function showFrame(k: number): void {
    const panels: [keyof Frames, HTMLCanvasElement, string, string][] = [
      ['forward', cForward, COLORS.forward, 'forward SDE: data → noise'],
      ['reverse', cReverse, COLORS.reverse, 'reverse SDE: noise → data'],
      ['ode', cOde, COLORS.ode, 'probability-flow ODE'],
    ];
    for (const [key, c, color, title] of panels) {
      const list = frames[key];
      if (!list.length) continue;
      // Each panel has its own frame count: k runs over the longest, the others are stretched to it.
      const longest = Math.max(frames.forward.length, frames.reverse.length, frames.ode.length);
      const i = Math.min(list.length - 1, Math.round((k / Math.max(1, longest - 1)) * (list.length - 1)));
      const t = frameTimes[key][i];
      scatter(c, list[i], color, `${title}, t = ${t.toFixed(2)}`);
    }
  }

  async function trajectories(opts: { n?: number; steps?: number; seed?: number } = {}) {
    frames = { forward: [], reverse: [], ode: [] };
    frameTimes = { forward: [], reverse: [], ode: [] };
    const counts = await client.request<Record<string, number>>(
      'pg:trajectories',
      { n: opts.n ?? 400, steps: opts.steps ?? 100, frames: 50, seed: opts.seed ?? 0 },
      {
        onProgress: (p: { panel: keyof Frames; t: number; points: Float32Array }) => {
          frames[p.panel].push(p.points);
          frameTimes[p.panel].push(p.t);
        },
      },
    );
    const longest = Math.max(frames.forward.length, frames.reverse.length, frames.ode.length);
    frameIn.max = String(longest - 1);
    frameIn.value = String(longest - 1);
    showFrame(longest - 1);
    play();
    return counts;
  }

  function play(): void {
    cancelAnimationFrame(playing);
    const last = Number(frameIn.max);
    let k = 0;
    let prev = 0;
    const tick = (now: number) => {
      if (now - prev > 60) {
        prev = now;
        frameIn.value = String(k);
        showFrame(k);
        k++;
      }
      playing = k <= last ? requestAnimationFrame(tick) : 0;
    };
    playing = requestAnimationFrame(tick);
  }

  async function langevin(
    opts: { n?: number; steps?: number; sigma?: number; seed?: number } = {},
  ): Promise<PlainArray> {
    if (opts.sigma) sigmaIn.value = String(opts.sigma);
    if (opts.steps) lStepsIn.value = String(opts.steps);
    const sigma = Number(sigmaIn.value);
    const r = await client.request<{ points: Float32Array; nfe: number }>(
      'pg:langevin',
      { n: opts.n ?? 500, steps: Number(lStepsIn.value), sigma, seed: opts.seed ?? 0 },
      {
        onProgress: (p: { step: number; points: Float32Array }) =>
          requestAnimationFrame(() =>
            scatter(cLangevin, p.points, COLORS.langevin, `Langevin σ = ${sigma}, step ${p.step}`),
          ),
      },
    );
    requestAnimationFrame(() =>
      scatter(cLangevin, r.points, COLORS.langevin, `Langevin σ = ${sigma}: ${r.nfe} steps done`),
    );
    return { shape: [r.points.length / 2, 2], values: Array.from(r.points) };
  }

  async function density(opts: { cells?: number } = {}): Promise<{ cells: number; logp: number[] }> {
    if (opts.cells) cellsIn.value = String(opts.cells);
    densityInfo.textContent = 'integrating the probability-flow ODE…';
    const t0 = performance.now();
    const r = await client.request<{ cells: number; logp: Float32Array; nfe: number }>('pg:density', {
      cells: Number(cellsIn.value),
    });
    heatmap(cDensity, r.logp, r.cells, `log p(x), ${r.cells}×${r.cells} grid`);
    densityInfo.textContent = `${r.nfe} NFE · ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    return { cells: r.cells, logp: Array.from(r.logp) };
  }

  // Buttons: each action reports its failure on screen (the hook's callers get the rejection as well).
  const guarded =
    <A extends unknown[]>(context: string, f: (...a: A) => Promise<unknown>) =>
    (...a: A) =>
      f(...a).catch((e) => {
        if (context !== 'training') showError(context, e);
        throw e;
      });
  const act = (f: () => Promise<unknown>) => () => void f().catch(() => undefined);
  const gScore = guarded('score field', scoreField);
  const gSample = guarded('sampling', sampleNow);
  const gTraj = guarded('trajectories', trajectories);
  const gLangevin = guarded('langevin', langevin);
  const gDensity = guarded('density', density);
  trainBtn.addEventListener(
    'click',
    act(() => startTraining()),
  );
  stopBtn.addEventListener('click', act(stopTraining));
  tIn.addEventListener('input', () => (tOut.textContent = Number(tIn.value).toFixed(2)));
  tIn.addEventListener('change', () => trained && act(() => gScore())());
  sampleBtn.addEventListener(
    'click',
    act(() => gSample()),
  );
  trajBtn.addEventListener(
    'click',
    act(() => gTraj()),
  );
  playBtn.addEventListener('click', play);
  frameIn.addEventListener('input', () => showFrame(Number(frameIn.value)));
  langevinBtn.addEventListener(
    'click',
    act(() => gLangevin()),
  );
  densityBtn.addEventListener(
    'click',
    act(() => gDensity()),
  );

  Object.assign(hook, {
    setData: guarded('data', loadData),
    startTraining,
    stopTraining,
    sample: gSample,
    scoreField: gScore,
    trajectories: gTraj,
    langevin: gLangevin,
    density: gDensity,
  });

  return {
    async start() {
      const o = await client.request<{ sdes: string[]; samplers: string[]; toys: string[] }>('pg:options');
      setOptions(toySel, [...o.toys, DRAW], 'swiss-roll');
      setOptions(sdeSel, o.sdes, 've');
      setOptions(samplerSel, o.samplers, 'pc');
      const backends = hook.options().backends;
      hook.options = () => ({ ...o, backends });
      drawLoss();
      for (const c of [cScore, cForward, cReverse, cOde, cSamples, cLangevin, cDensity]) clear(c);
      await loadData();
    },
    backendChanged() {
      trained = false;
      status.textContent = `not trained (backend ${hook.backend})`;
      // The model is gone with the old backend: its pictures go too, so nothing on screen claims a model that is not there.
      for (const c of [cScore, cForward, cReverse, cOde, cSamples, cLangevin, cDensity]) clear(c);
      frames = { forward: [], reverse: [], ode: [] };
      hook.lastSamples = null;
    },
  };
}
