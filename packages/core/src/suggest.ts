import { SbmError, describeValue } from './errors';

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions: "stpes" → "steps" is 1). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => [i, ...new Array<number>(n).fill(0)]);
  for (let j = 0; j <= n; j++) d[0][j] = j;
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[m][n];
}

const normalize = (s: string): string => s.toLowerCase().replace(/[-_.\s]/g, '');

/**
 * The closest of `candidates` to `name`, or undefined when none is close. In order: an explicit alias
 * (`num_inference_steps` → `steps`: the names other libraries use), the same name up to case and separators
 * (`snr`/`SNR`, `beta_min`/`betaMin`), a small edit distance (≤ 1 for short names, about a third of the length for
 * longer ones), then a candidate the name contains or is contained in (`n_steps` → `steps`).
 */
export function suggestName(
  name: string,
  candidates: readonly string[],
  aliases: Readonly<Record<string, string>> = {},
): string | undefined {
  const alias = Object.prototype.hasOwnProperty.call(aliases, name) ? aliases[name] : undefined;
  if (alias !== undefined && candidates.includes(alias)) return alias;
  const n = normalize(name);
  const same = candidates.find((c) => normalize(c) === n);
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(n, normalize(c));
    const limit = Math.max(1, Math.floor(Math.min(n.length, c.length) / 3));
    if (dist <= limit && dist < bestD) {
      best = c;
      bestD = dist;
    }
  }
  if (best !== undefined) return best;
  const contained = candidates
    .filter((c) => normalize(c).length >= 3 && (n.includes(normalize(c)) || normalize(c).includes(n)) && n.length >= 3)
    .sort((a, b) => b.length - a.length);
  return contained[0];
}

/** " (did you mean "steps"?)" or "". */
export function didYouMean(
  name: unknown,
  candidates: readonly string[],
  aliases?: Readonly<Record<string, string>>,
): string {
  if (typeof name !== 'string') return '';
  const s = suggestName(name, candidates, aliases);
  return s === undefined ? '' : ` (did you mean ${JSON.stringify(s)}?)`;
}

/** Names of other libraries' options (diffusers, k-diffusion, score_sde) that mean one of sbm's. */
export const OPTION_ALIASES: Readonly<Record<string, string>> = {
  num_inference_steps: 'steps',
  num_steps: 'steps',
  n_steps: 'steps',
  nsteps: 'steps',
  n: 'steps',
  generator: 'seed',
  random_seed: 'seed',
  batch_size: 'shape',
  callback: 'onProgress',
  score_fn: 'score',
  model: 'score',
  sampling_eps: 'eps',
  snr_ratio: 'snr',
  n_steps_each: 'correctorSteps',
  corrector_steps: 'correctorSteps',
  probability_flow: 'probabilityFlow',
  denoise: 'denoiseToZero',
  noise_removal: 'denoiseToZero',
  latents: 'init',
  x_T: 'init',
  xT: 'init',
};

/**
 * Strict options: throws INVALID_ARGUMENT for the first key of `options` not in `allowed`, naming where it was
 * passed, the closest allowed key and the full list. Keys whose value is `undefined` are accepted (spreading a
 * partial config is common). `where` reads like "sample (sampler \"pc\")".
 */
export function checkOptions(
  options: unknown,
  allowed: readonly string[],
  where: string,
  aliases: Readonly<Record<string, string>> = OPTION_ALIASES,
): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new SbmError('INVALID_ARGUMENT', `${where}: options: expected an object, got ${describeValue(options)}`, {
      argument: 'options',
    });
  }
  for (const key of Object.keys(options)) {
    if (allowed.includes(key) || (options as Record<string, unknown>)[key] === undefined) continue;
    const hint = didYouMean(key, allowed, aliases);
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${where}: unknown option ${JSON.stringify(key)}${hint}; expected some of ${[...allowed].sort().join(', ')}`,
      { argument: key, expected: [...allowed], received: key, suggestion: suggestName(key, allowed, aliases) },
    );
  }
}
