import type { BackendInfo } from './protocol';

/** Training as the page last heard it from the worker. */
export interface TrainingState {
  step: number;
  /** Loss of the last report (DSM, per step); null before the first. */
  loss: number | null;
  running: boolean;
  /** Steps per second over the run so far; null before the first report. */
  stepsPerSec: number | null;
  /** The run's budget. */
  steps: number;
}

/** A tensor as plain JSON: row-major values and the shape. */
export interface PlainArray {
  shape: number[];
  values: number[];
}

export interface TrainOptions {
  /** SDE name from @sbm/sde's registry (default 'vp'). */
  sde?: string;
  /** Hidden widths of the MLP (default [128, 128, 128]). */
  hidden?: number[];
  steps?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** Then draw the score field, sample and animate the trajectories (default: the page's checkbox, on). */
  followUp?: boolean;
}

export interface TrainSummary {
  step: number;
  aborted: boolean;
  finalLoss: number;
  firstLoss: number;
  ms: number;
  stepsPerSec: number;
  backend: string;
}

export interface SampleOptions {
  /** Sampler name from @sbm/samplers' registry (default 'pc' without corrector). */
  sampler?: string;
  steps?: number;
  n?: number;
  seed?: number;
}

export interface SampleSummary extends PlainArray {
  sampler: string;
  nfe: number;
  ms: number;
}

/** Data of the playground: a toy set by name, or points drawn by hand (an empty list is allowed, and reported). */
export type DataChoice = { toy: string; n?: number; seed?: number } | { points: number[][] };

export interface CanvasInfo {
  width: number;
  height: number;
  /** Pixels that differ from the canvas's background and axis colours (captions count: a few hundred). */
  inked: number;
}

/**
 * `window.sbmDemo`: the page's state and actions as plain JSON and promises, so browser automation needs no
 * knowledge of the markup. Every action also updates the page as a click would, and every error it rejects with is
 * also appended to `errors` and shown on screen.
 */
export interface SbmDemoHook {
  version: 1;
  /** True once the backend started and the first frame was drawn. */
  ready: boolean;
  /** Navigation start → first interactive frame (performance mark `sbm:interactive`), ms. */
  coldStartMs: number | null;
  backend: string;
  backendReason: string;
  crossOriginIsolated: boolean;
  training: TrainingState;
  lastSamples: SampleSummary | null;
  /** Every error the page showed, oldest first. */
  errors: string[];
  setBackend(name: string): Promise<BackendInfo>;
  setData(choice: DataChoice): Promise<{ n: number }>;
  startTraining(opts?: TrainOptions): Promise<TrainSummary>;
  stopTraining(): Promise<void>;
  sample(opts?: SampleOptions): Promise<SampleSummary>;
  /** Draws the learned score at time t (default the slider's). */
  scoreField(opts?: { t?: number }): Promise<{ t: number; cells: number }>;
  /** Forward SDE, reverse SDE and probability-flow ODE trajectories; resolves when all frames arrived. */
  trajectories(opts?: { n?: number; steps?: number; seed?: number }): Promise<Record<string, number>>;
  langevin(opts?: { n?: number; steps?: number; sigma?: number; seed?: number }): Promise<PlainArray>;
  density(opts?: { cells?: number }): Promise<{ cells: number; logp: number[] }>;
  /** Names the page offers: SDEs, samplers, toy sets, backends. */
  options(): { sdes: string[]; samplers: string[]; toys: string[]; backends: string[] };
  /** Every named canvas of the page with the count of drawn pixels. */
  canvases(): Record<string, CanvasInfo>;
  /** Filled in by the digits panel (src/digits/panel.ts). */
  digits: Record<string, unknown>;
}

declare global {
  interface Window {
    sbmDemo: SbmDemoHook;
  }
}

/**
 * Counts the pixels of a canvas that are neither its background (the top-left pixel) nor one of `ignore` (the axis
 * colour, as [r, g, b]): an empty plot with its axes counts as blank.
 */
export function inkedPixels(canvas: HTMLCanvasElement, ignore: [number, number, number][] = []): number {
  const ctx = canvas.getContext('2d');
  if (!ctx || canvas.width === 0 || canvas.height === 0) return 0;
  const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] === d[0] && d[i + 1] === d[1] && d[i + 2] === d[2] && d[i + 3] === d[3]) continue;
    if (ignore.some(([r, g, b]) => d[i] === r && d[i + 1] === g && d[i + 2] === b)) continue;
    n++;
  }
  return n;
}
