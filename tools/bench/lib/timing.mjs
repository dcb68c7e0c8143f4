// Shared timing helpers for bench suites.

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Wall times in ms of `fn` over `reps` runs after `warmup` unmeasured runs: the median (the reported figure) and
 * the minimum (less sensitive to other processes competing for the cores).
 */
export function timeRuns(fn, { reps = 7, warmup = 2 } = {}) {
  for (let i = 0; i < warmup; i++) fn();
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return { median: median(ts), min: Math.min(...ts) };
}

/** Parses `--name value` / `--flag` options. */
export function parseArgs(args) {
  const out = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) continue;
    const key = a.slice(2);
    const next = args[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      out[key] = next;
      i++;
    } else out[key] = true;
  }
  return out;
}

export const round = (x, d = 3) => (x === null || x === undefined ? null : Number(x.toFixed(d)));
