import { SbmError, checkNumber, didYouMean, suggestName, type NumberRule } from '@sbm/core';

/**
 * Option names other code bases use for sbm's SDE options (score_sde's configs: `num_scales`, `beta_min`, …). Case
 * and separators are matched anyway (`beta_min` → `betaMin`); these are the renamings.
 */
export const SDE_OPTION_ALIASES: Readonly<Record<string, string>> = {
  num_scales: 'N',
  numScales: 'N',
  steps: 'N',
  beta_0: 'betaMin',
  beta_1: 'betaMax',
  beta_start: 'betaMin',
  beta_end: 'betaMax',
  sigma_min: 'sigmaMin',
  sigma_max: 'sigmaMax',
  t_max: 'tMax',
};

/** Per option: a checkNumber rule, or null for an option this helper should only accept (checked elsewhere). */
export type SdeOptionSpec = Readonly<Record<string, NumberRule | null>>;

/**
 * Validates the options of an SDE's config (everything but `name`) for its registry factory: an unknown key throws
 * INVALID_ARGUMENT naming it, the allowed keys and the closest one ("sde.betamax: not an option of the "vp" SDE
 * (expected one of betaMin, betaMax, N, T); did you mean "betaMax"?"); each given number is checked against its rule
 * (checkNumber: finite, integer, bounds). Keys whose value is undefined are accepted, as spreading a partial config
 * leaves them. Returns the options, typed.
 *
 * ```ts
 * registerSde('ou', (o) => new OuSde(checkSdeOptions<OuSdeOptions>('ou', o, { theta: { gt: 0 }, s: { gt: 0 }, N: SDE_N, T: SDE_T })));
 * ```
 */
export function checkSdeOptions<T extends object = Record<string, unknown>>(
  sde: string,
  options: unknown,
  spec: SdeOptionSpec,
): T {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected options of the "${sde}" SDE as an object, got ${typeof options}`,
      {
        argument: 'sde',
      },
    );
  }
  const allowed = Object.keys(spec);
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (o[key] === undefined) continue;
    if (!allowed.includes(key)) {
      const hint = didYouMean(key, allowed, SDE_OPTION_ALIASES).replace(/^ \((.*)\)$/, '; $1');
      throw new SbmError(
        'INVALID_ARGUMENT',
        `sde.${key}: not an option of the "${sde}" SDE (expected one of ${allowed.join(', ')})${hint}`,
        {
          argument: `sde.${key}`,
          expected: allowed,
          received: key,
          suggestion: suggestName(key, allowed, SDE_OPTION_ALIASES),
        },
      );
    }
    const rule = spec[key];
    if (rule) checkNumber(o[key], key, rule);
  }
  return options as T;
}

/** The rule for N (discretization steps): an integer >= 1. */
export const SDE_N: NumberRule = { integer: true, min: 1 };
/** The rule for T (end time): > 0. */
export const SDE_T: NumberRule = { gt: 0 };
