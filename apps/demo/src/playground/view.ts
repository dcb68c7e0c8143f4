/** The playground's data square: every toy set lies within ±2.4, so ±3 leaves a margin for the noised points. */
export const VIEW = { min: -3, max: 3 } as const;

export const COLORS = {
  background: '#ffffff',
  axis: '#d0d4da',
  data: '#1f77b4',
  samples: '#d62728',
  reverse: '#2ca02c',
  ode: '#9467bd',
  forward: '#ff7f0e',
  langevin: '#8c564b',
  arrow: '#333333',
  loss: '#1f77b4',
};

/** Data coordinates → canvas pixels (y up). */
export function toPixel(canvas: HTMLCanvasElement, x: number, y: number): [number, number] {
  const s = VIEW.max - VIEW.min;
  return [((x - VIEW.min) / s) * canvas.width, (1 - (y - VIEW.min) / s) * canvas.height];
}

/** Canvas pixels (CSS pixels of a mouse event) → data coordinates. */
export function toData(canvas: HTMLCanvasElement, px: number, py: number): [number, number] {
  const r = canvas.getBoundingClientRect();
  const s = VIEW.max - VIEW.min;
  return [VIEW.min + (px / r.width) * s, VIEW.min + (1 - py / r.height) * s];
}

export function clear(canvas: HTMLCanvasElement, title?: string): CanvasRenderingContext2D {
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = COLORS.background;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = COLORS.axis;
  ctx.lineWidth = 1;
  const [x0, y0] = toPixel(canvas, 0, 0);
  ctx.beginPath();
  ctx.moveTo(0, y0);
  ctx.lineTo(canvas.width, y0);
  ctx.moveTo(x0, 0);
  ctx.lineTo(x0, canvas.height);
  ctx.stroke();
  if (title) caption(ctx, title);
  return ctx;
}

export function caption(ctx: CanvasRenderingContext2D, text: string): void {
  ctx.fillStyle = '#222';
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillText(text, 6, 15);
}

export function scatter(canvas: HTMLCanvasElement, points: ArrayLike<number>, color: string, title?: string): void {
  const ctx = clear(canvas);
  dots(canvas, ctx, points, color);
  if (title) caption(ctx, title);
}

export function dots(
  canvas: HTMLCanvasElement,
  ctx: CanvasRenderingContext2D,
  points: ArrayLike<number>,
  color: string,
  r = 1.6,
): void {
  ctx.fillStyle = color;
  for (let i = 0; i + 1 < points.length; i += 2) {
    const [px, py] = toPixel(canvas, points[i], points[i + 1]);
    ctx.fillRect(px - r, py - r, 2 * r, 2 * r);
  }
}

/**
 * Score arrows on the grid. Lengths are scaled by the largest norm (so the field's shape, not its size, shows: near
 * t = 0 the norms span orders of magnitude), each arrow at most one cell long.
 */
export function arrows(
  canvas: HTMLCanvasElement,
  grid: ArrayLike<number>,
  vectors: ArrayLike<number>,
  cells: number,
  data: ArrayLike<number> | undefined,
  title: string,
): void {
  const ctx = clear(canvas);
  if (data) {
    ctx.globalAlpha = 0.35;
    dots(canvas, ctx, data, COLORS.data, 1);
    ctx.globalAlpha = 1;
  }
  let maxNorm = 0;
  for (let k = 0; k < vectors.length; k += 2) maxNorm = Math.max(maxNorm, Math.hypot(vectors[k], vectors[k + 1]));
  const cell = canvas.width / cells;
  ctx.strokeStyle = COLORS.arrow;
  ctx.fillStyle = COLORS.arrow;
  ctx.lineWidth = 1;
  for (let k = 0; k < grid.length; k += 2) {
    const vx = vectors[k];
    const vy = vectors[k + 1];
    const norm = Math.hypot(vx, vy);
    if (!(norm > 0) || !(maxNorm > 0)) continue;
    // sqrt compresses the range so small arrows far from the data stay visible.
    const len = 0.9 * cell * Math.sqrt(norm / maxNorm);
    const [px, py] = toPixel(canvas, grid[k], grid[k + 1]);
    const dx = (vx / norm) * len;
    const dy = (-vy / norm) * len;
    ctx.beginPath();
    ctx.moveTo(px, py);
    ctx.lineTo(px + dx, py + dy);
    ctx.stroke();
    const a = Math.atan2(dy, dx);
    ctx.beginPath();
    ctx.moveTo(px + dx, py + dy);
    ctx.lineTo(px + dx - 4 * Math.cos(a - 0.5), py + dy - 4 * Math.sin(a - 0.5));
    ctx.lineTo(px + dx - 4 * Math.cos(a + 0.5), py + dy - 4 * Math.sin(a + 0.5));
    ctx.closePath();
    ctx.fill();
  }
  caption(ctx, title);
}

/** log p on the grid as a heat map (viridis-like ramp), clipped below at max − 12 nats so the tails do not wash out. */
export function heatmap(canvas: HTMLCanvasElement, logp: ArrayLike<number>, cells: number, title: string): void {
  const ctx = clear(canvas);
  let hi = -Infinity;
  for (let i = 0; i < logp.length; i++) if (Number.isFinite(logp[i])) hi = Math.max(hi, logp[i]);
  const lo = hi - 12;
  const w = canvas.width / cells;
  const h = canvas.height / cells;
  for (let i = 0; i < cells; i++) {
    for (let j = 0; j < cells; j++) {
      const v = logp[i * cells + j];
      const u = Number.isFinite(v) ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0;
      ctx.fillStyle = ramp(u);
      // Row i is y = VIEW.min + (i + ½)·cell, drawn from the bottom up.
      ctx.fillRect(j * w, canvas.height - (i + 1) * h, Math.ceil(w), Math.ceil(h));
    }
  }
  caption(ctx, title);
}

function ramp(u: number): string {
  // Three anchor colours of matplotlib's viridis, linearly interpolated.
  const a = [68, 1, 84];
  const b = [33, 145, 140];
  const c = [253, 231, 37];
  const [p, q, f] = u < 0.5 ? [a, b, u * 2] : [b, c, (u - 0.5) * 2];
  return `rgb(${p.map((v, i) => Math.round(v + (q[i] - v) * f)).join(',')})`;
}

/** Loss per step (log scale, smoothed by a running mean of 20) with the axis range as text. */
export function lossCurve(canvas: HTMLCanvasElement, steps: number[], losses: number[], title: string): void {
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = COLORS.background;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  caption(ctx, title);
  if (losses.length < 1) return;
  const sm: number[] = [];
  let acc = 0;
  for (let i = 0; i < losses.length; i++) {
    acc += losses[i];
    if (i >= 20) acc -= losses[i - 20];
    sm.push(acc / Math.min(i + 1, 20));
  }
  const logs = sm.map((v) => Math.log10(Math.max(v, 1e-6)));
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  const span = hi - lo || 1;
  const last = steps[steps.length - 1] || 1;
  const pad = 22;
  ctx.strokeStyle = COLORS.loss;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  logs.forEach((v, i) => {
    const x = pad + ((steps[i] ?? i) / last) * (canvas.width - 2 * pad);
    const y = pad + (1 - (v - lo) / span) * (canvas.height - 2 * pad);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = '#555';
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillText(`${(10 ** hi).toPrecision(3)}`, 2, pad);
  ctx.fillText(`${(10 ** lo).toPrecision(3)}`, 2, canvas.height - 4);
  ctx.fillText(`step ${last}`, canvas.width - 70, canvas.height - 4);
}
