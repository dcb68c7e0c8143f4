import type { TrainProgress } from '@sbm/training';
import { formatDuration } from './util';

/** Plain (non-terminal) progress lines at most this often: SBM_PROGRESS_INTERVAL_MS, default 2 s. */
function defaultInterval(): number {
  const v = Number(process.env.SBM_PROGRESS_INTERVAL_MS);
  return process.env.SBM_PROGRESS_INTERVAL_MS !== undefined && Number.isFinite(v) && v >= 0 ? v : 2000;
}

/**
 * Training progress on stderr: a bar redrawn in place when stderr is a terminal, otherwise one plain line at most
 * every `intervalMs` (and at the last step), so logs stay readable when redirected to a file.
 */
export class ProgressReporter {
  private last = 0;
  private drewBar = false;
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly unit: string,
    private readonly intervalMs = defaultInterval(),
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY) && !process.env.CI;
  }

  update(p: TrainProgress): void {
    const now = Date.now();
    const final = p.step >= this.total;
    const text =
      `step ${p.step}/${this.total}  loss ${p.loss.toPrecision(4)}  ` +
      `${Math.round(p.imagesPerSec)} ${this.unit}/s  ETA ${formatDuration(p.etaSec)}`;
    if (this.tty) {
      if (!final && now - this.last < 100) return;
      this.last = now;
      const width = 24;
      const filled = Math.round((width * p.step) / Math.max(1, this.total));
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      this.stream.write(`\r\x1b[2K${bar} ${text}`);
      this.drewBar = true;
      if (final) this.end();
      return;
    }
    if (!final && now - this.last < this.intervalMs) return;
    this.last = now;
    this.stream.write(`${text}\n`);
  }

  /** Ends the bar line (call before printing anything else). */
  end(): void {
    if (this.tty && this.drewBar) {
      this.stream.write('\n');
      this.drewBar = false;
    }
  }
}

/**
 * Progress of a loop that knows its fraction done (sampling, likelihood ODE solves), drawn like training's: a bar on
 * a terminal, a plain line at most every `intervalMs` otherwise. The ETA is the elapsed time scaled by what is left,
 * measured from the first update so that start-up (graph building, the first kernels) does not count twice.
 */
export class FractionProgress {
  private last = 0;
  private drewBar = false;
  private readonly tty: boolean;
  private readonly t0 = Date.now();
  private ended = false;

  constructor(
    private readonly label: string,
    private readonly intervalMs = defaultInterval(),
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY) && !process.env.CI;
  }

  /** `fraction` in [0, 1]; `detail` e.g. "step 120/1000  NFE 240". */
  update(fraction: number, detail: string): void {
    if (this.ended) return;
    const now = Date.now();
    const f = Math.min(1, Math.max(0, fraction));
    const final = f >= 1;
    const elapsed = (now - this.t0) / 1000;
    const eta = f > 0 ? (elapsed * (1 - f)) / f : Infinity;
    const text = `${this.label} ${Math.floor(100 * f)}%  ${detail}  ETA ${formatDuration(eta)}`;
    if (this.tty) {
      if (!final && now - this.last < 100) return;
      this.last = now;
      const width = 24;
      const filled = Math.round(width * f);
      this.stream.write(`\r\x1b[2K${'█'.repeat(filled) + '░'.repeat(width - filled)} ${text}`);
      this.drewBar = true;
      if (final) this.end();
      return;
    }
    if (!final && now - this.last < this.intervalMs) return;
    this.last = now;
    this.stream.write(`${text}\n`);
    if (final) this.ended = true;
  }

  /** Ends the bar line (call before printing anything else). */
  end(): void {
    if (this.tty && this.drewBar) {
      this.stream.write('\n');
      this.drewBar = false;
    }
    this.ended = true;
  }
}
