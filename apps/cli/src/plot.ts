import { createRequire } from 'node:module';
import { encodePng } from '@sbm/backend-node';
import * as PImage from 'pureimage';

/**
 * Figures for the CLI, drawn with pureimage (a pure-JavaScript canvas 2-D API) and encoded by @sbm/backend-node's encodePng. Labels use
 * DejaVu Sans from the dejavu-fonts-ttf package; without it the figures are drawn without text.
 */

type Ctx = ReturnType<ReturnType<typeof PImage.make>['getContext']>;
const FONT = 'DejaVu Sans';
let fontState: 'unloaded' | 'ok' | 'missing' = 'unloaded';

function ensureFont(): boolean {
  if (fontState === 'unloaded') {
    try {
      const req = createRequire(import.meta.url);
      const font = PImage.registerFont(req.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf'), FONT);
      font.loadSync();
      fontState = 'ok';
    } catch {
      fontState = 'missing';
    }
  }
  return fontState === 'ok';
}

export const COLORS = {
  data: '#7f7f7f',
  pc: '#1f77b4',
  ode: '#ff7f0e',
  em: '#2ca02c',
  other: '#d62728',
  arrow: '#1f3b73',
  line: '#1f77b4',
};

export interface Bounds {
  xmin: number;
  xmax: number;
  ymin: number;
  ymax: number;
}

/** Bounds of the 0.5–99.5 % quantiles of the points in each coordinate, widened by `pad` of the span. */
export function boundsOf(points: ArrayLike<number>, pad = 0.08): Bounds {
  const n = points.length / 2;
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = points[2 * i];
    const y = points[2 * i + 1];
    if (Number.isFinite(x) && Number.isFinite(y)) {
      xs.push(x);
      ys.push(y);
    }
  }
  if (xs.length === 0) return { xmin: -1, xmax: 1, ymin: -1, ymax: 1 };
  xs.sort((a, b) => a - b);
  ys.sort((a, b) => a - b);
  const q = (v: number[], p: number) => v[Math.min(v.length - 1, Math.max(0, Math.round(p * (v.length - 1))))];
  let xmin = q(xs, 0.005);
  let xmax = q(xs, 0.995);
  let ymin = q(ys, 0.005);
  let ymax = q(ys, 0.995);
  const dx = Math.max(xmax - xmin, 1e-6);
  const dy = Math.max(ymax - ymin, 1e-6);
  xmin -= pad * dx;
  xmax += pad * dx;
  ymin -= pad * dy;
  ymax += pad * dy;
  return { xmin, xmax, ymin, ymax };
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) ticks.push(Math.abs(v) < 1e-12 ? 0 : v);
  return ticks;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(3)));
}

class Canvas {
  readonly img: ReturnType<typeof PImage.make>;
  readonly ctx: Ctx;
  readonly text: boolean;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.img = PImage.make(width, height);
    this.ctx = this.img.getContext('2d');
    this.ctx.fillStyle = '#ffffff';
    this.ctx.fillRect(0, 0, width, height);
    this.text = ensureFont();
  }

  label(s: string, x: number, y: number, size = 13, color = '#000000', align: 'left' | 'center' | 'right' = 'left') {
    if (!this.text) return;
    const ctx = this.ctx;
    ctx.font = `${size}px "${FONT}"`;
    ctx.fillStyle = color;
    let dx = 0;
    if (align !== 'left') {
      const w = ctx.measureText(s).width;
      dx = align === 'center' ? -w / 2 : -w;
    }
    ctx.fillText(s, x + dx, y);
  }

  line(x0: number, y0: number, x1: number, y1: number, color: string, width = 1) {
    const ctx = this.ctx;
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
  }

  png(): Uint8Array {
    return encodePng(
      new Uint8Array(this.img.data.buffer, this.img.data.byteOffset, this.img.data.length),
      this.width,
      this.height,
      4,
    );
  }
}

/** A plotting area inside a canvas with data → pixel maps, a frame, ticks and a title. */
class Axes {
  constructor(
    readonly c: Canvas,
    readonly left: number,
    readonly top: number,
    readonly w: number,
    readonly h: number,
    readonly b: Bounds,
  ) {}

  px(x: number): number {
    return this.left + ((x - this.b.xmin) / (this.b.xmax - this.b.xmin)) * this.w;
  }

  py(y: number): number {
    return this.top + this.h - ((y - this.b.ymin) / (this.b.ymax - this.b.ymin)) * this.h;
  }

  inside(px: number, py: number): boolean {
    return px >= this.left && px <= this.left + this.w && py >= this.top && py <= this.top + this.h;
  }

  frame(title?: string, xTicks = true, yTicks = true, yFmt: (v: number) => string = fmtTick) {
    const c = this.c;
    if (xTicks) {
      for (const t of niceTicks(this.b.xmin, this.b.xmax)) {
        const x = this.px(t);
        c.line(x, this.top, x, this.top + this.h, '#eeeeee');
        c.line(x, this.top + this.h, x, this.top + this.h + 4, '#000000');
        c.label(fmtTick(t), x, this.top + this.h + 17, 11, '#333333', 'center');
      }
    }
    if (yTicks) {
      for (const t of niceTicks(this.b.ymin, this.b.ymax)) {
        const y = this.py(t);
        c.line(this.left, y, this.left + this.w, y, '#eeeeee');
        c.line(this.left - 4, y, this.left, y, '#000000');
        c.label(yFmt(t), this.left - 6, y + 4, 11, '#333333', 'right');
      }
    }
    const ctx = c.ctx;
    ctx.strokeStyle = '#000000';
    ctx.lineWidth = 1;
    ctx.strokeRect(this.left, this.top, this.w, this.h);
    if (title) c.label(title, this.left + this.w / 2, this.top - 8, 14, '#000000', 'center');
  }

  points(xy: ArrayLike<number>, color: string, radius = 1.6) {
    const ctx = this.c.ctx;
    ctx.fillStyle = color;
    const n = xy.length / 2;
    for (let i = 0; i < n; i++) {
      const x = this.px(xy[2 * i]);
      const y = this.py(xy[2 * i + 1]);
      if (!this.inside(x, y)) continue;
      ctx.fillRect(x - radius, y - radius, 2 * radius, 2 * radius);
    }
  }
}

export interface ScatterPanel {
  title: string;
  points: ArrayLike<number>;
  color: string;
  /** Drawn first, in light gray (e.g. the data under the samples). */
  background?: ArrayLike<number>;
}

/** Side-by-side scatter plots of 2-D point sets ([x0, y0, x1, y1, …]) on common axes. */
export function scatterPng(panels: ScatterPanel[], opts: { bounds?: Bounds; size?: number; caption?: string } = {}) {
  const size = opts.size ?? 300;
  const margin = { l: 46, r: 14, t: opts.caption ? 46 : 30, b: 30 };
  const width = panels.length * (size + margin.l + margin.r);
  const height = size + margin.t + margin.b;
  const c = new Canvas(width, height);
  const all: number[] = [];
  for (const p of panels) for (let i = 0; i < p.points.length; i++) all.push(p.points[i]);
  const b = opts.bounds ?? boundsOf(all);
  // Equal scales on both axes so shapes are not distorted.
  const cx = (b.xmin + b.xmax) / 2;
  const cy = (b.ymin + b.ymax) / 2;
  const half = Math.max(b.xmax - b.xmin, b.ymax - b.ymin) / 2;
  const sq: Bounds = { xmin: cx - half, xmax: cx + half, ymin: cy - half, ymax: cy + half };
  if (opts.caption) c.label(opts.caption, width / 2, 16, 13, '#000000', 'center');
  panels.forEach((p, k) => {
    const ax = new Axes(c, k * (size + margin.l + margin.r) + margin.l, margin.t, size, size, sq);
    ax.frame(p.title);
    if (p.background) ax.points(p.background, '#d0d0d0', 1.2);
    ax.points(p.points, p.color);
  });
  return c.png();
}

/**
 * Arrows of a 2-D vector field at grid points over the data. The score's norm grows with the distance from the data
 * (like d/σ²), so linear lengths would show only the far field: an arrow's length is 0.3 + 0.7·√(norm / q95) of
 * 0.9 grid cells (q95 the 95th-percentile norm, capped at 1), which keeps the directions near the data visible.
 */
export function vectorFieldPng(opts: {
  data: ArrayLike<number>;
  grid: ArrayLike<number>;
  vectors: ArrayLike<number>;
  cells: number;
  bounds: Bounds;
  title: string;
  size?: number;
}): Uint8Array {
  const size = opts.size ?? 520;
  const margin = { l: 46, r: 14, t: 30, b: 30 };
  const c = new Canvas(size + margin.l + margin.r, size + margin.t + margin.b);
  const ax = new Axes(c, margin.l, margin.t, size, size, opts.bounds);
  ax.frame(opts.title);
  ax.points(opts.data, '#c8c8c8', 1.2);
  const n = opts.grid.length / 2;
  const norms: number[] = [];
  for (let i = 0; i < n; i++) norms.push(Math.hypot(opts.vectors[2 * i], opts.vectors[2 * i + 1]));
  const sorted = [...norms].filter(Number.isFinite).sort((a, b) => a - b);
  const ref = sorted[Math.floor(0.95 * (sorted.length - 1))] || 1;
  const cellPx = size / opts.cells;
  const ctx = c.ctx;
  for (let i = 0; i < n; i++) {
    const norm = norms[i];
    if (!Number.isFinite(norm) || norm === 0) continue;
    const len = 0.9 * cellPx * (0.3 + 0.7 * Math.min(1, Math.sqrt(norm / ref)));
    // Pixel y grows downwards, so the y component flips sign.
    const ux = opts.vectors[2 * i] / norm;
    const uy = -opts.vectors[2 * i + 1] / norm;
    const x0 = ax.px(opts.grid[2 * i]);
    const y0 = ax.py(opts.grid[2 * i + 1]);
    const x1 = x0 + ux * len;
    const y1 = y0 + uy * len;
    c.line(x0, y0, x1, y1, COLORS.arrow, 1.2);
    const head = Math.max(2.5, 0.3 * len);
    ctx.fillStyle = COLORS.arrow;
    ctx.beginPath();
    ctx.moveTo(x1, y1);
    ctx.lineTo(x1 - head * ux + 0.5 * head * uy, y1 - head * uy - 0.5 * head * ux);
    ctx.lineTo(x1 - head * ux - 0.5 * head * uy, y1 - head * uy + 0.5 * head * ux);
    ctx.closePath();
    ctx.fill();
  }
  return c.png();
}

/** Training loss against step (a line; a second, smoothed line when there are many points). */
export function lossCurvePng(steps: number[], values: number[], title = 'training loss'): Uint8Array {
  const width = 640;
  const height = 360;
  const margin = { l: 64, r: 18, t: 30, b: 44 };
  const c = new Canvas(width, height);
  const raw = values.filter(Number.isFinite);
  // A loss that falls by orders of magnitude (the DSM loss of an image model starts ~100× above where it settles)
  // is drawn on a log axis, so the later phase of training is visible rather than a flat line along the bottom.
  const logScale = raw.length > 1 && Math.min(...raw) > 0 && Math.max(...raw) / Math.min(...raw) > 30;
  const tr = (v: number) => (logScale ? Math.log10(v) : v);
  values = values.map((v) => (Number.isFinite(v) && (!logScale || v > 0) ? tr(v) : NaN));
  if (logScale) title += ' (log scale)';
  const finite = values.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (hi - lo < 1e-12) {
    lo -= 0.5;
    hi += 0.5;
  }
  const pad = 0.05 * (hi - lo);
  const x0 = steps.length ? steps[0] : 0;
  const x1 = steps.length > 1 ? steps[steps.length - 1] : x0 + 1;
  const ax = new Axes(c, margin.l, margin.t, width - margin.l - margin.r, height - margin.t - margin.b, {
    xmin: Math.min(0, x0),
    xmax: x1,
    ymin: lo - pad,
    ymax: hi + pad,
  });
  ax.frame(title, true, true, logScale ? (v) => fmtTick(10 ** v) : fmtTick);
  c.label('step', margin.l + ax.w / 2, height - 8, 12, '#000000', 'center');
  const poly = (ys: number[], color: string, width: number) => {
    const ctx = c.ctx;
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    let started = false;
    for (let i = 0; i < steps.length; i++) {
      if (!Number.isFinite(ys[i])) continue;
      const x = ax.px(steps[i]);
      const y = ax.py(ys[i]);
      if (!started) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
      started = true;
    }
    if (started) ctx.stroke();
  };
  if (steps.length > 50) {
    poly(values, '#a6c8e4', 1);
    // Centred moving average over ~2 % of the points: shows the trend under the minibatch noise.
    const k = Math.max(2, Math.round(steps.length / 50));
    const smooth = values.map((_, i) => {
      const a = Math.max(0, i - k);
      const b = Math.min(values.length, i + k + 1);
      const w = values.slice(a, b).filter(Number.isFinite);
      return w.reduce((s, v) => s + v, 0) / Math.max(1, w.length);
    });
    poly(smooth, COLORS.line, 2);
  } else {
    poly(values, COLORS.line, 2);
  }
  return c.png();
}
