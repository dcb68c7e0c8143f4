import { SbmError, checkOptions, describeValue } from '@sbm/core';
import { checkCommon, getMethod, measurementResidual, registerMethod, COMMON_KEYS } from './method-registry';
import { projectionMethod } from './methods/projection';
import { lambdaProjectionMethod } from './methods/lambda-projection';
import { repaintMethod } from './methods/repaint';
import { dpsMethod } from './methods/dps';
import { guidanceMethod } from './methods/guidance';
import type { ConditionalResult, ConditionalSampleOptions } from './types';

// The built-in methods, registered where conditionalSample lives so that a bundler keeping conditionalSample keeps them.
const SOURCE = '@sbm/inverse-problems';
registerMethod('projection', projectionMethod, { ifAbsent: true, source: SOURCE });
registerMethod('lambda-projection', lambdaProjectionMethod, { ifAbsent: true, source: SOURCE });
registerMethod('repaint', repaintMethod, { ifAbsent: true, source: SOURCE });
registerMethod('dps', dpsMethod, { ifAbsent: true, source: SOURCE });
registerMethod('guidance', guidanceMethod, { ifAbsent: true, source: SOURCE });

/**
 * Conditional sampling from an unconditional score model: p(x | y) ∝ p(x) p(y | x) by the registered `method`
 * (Bayes' rule for scores, ∇ log p_t(x | y) = ∇ log p_t(x) + ∇ log p_t(y | x), each method approximating the second
 * term its own way). Returns the samples, ‖A x − y‖ per sample and the stats.
 */
export async function conditionalSample(opts: ConditionalSampleOptions): Promise<ConditionalResult> {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `conditionalSample: options: expected an object, got ${describeValue(opts)}`,
    );
  }
  const def = getMethod(opts.method);
  checkOptions(opts as unknown as Record<string, unknown>, [...COMMON_KEYS, ...def.keys], opts.method);
  const op = await checkCommon(opts, def);
  const out = await def.run(opts);
  let residual: number[] = [];
  if (op && opts.y) {
    try {
      residual = await measurementResidual(op, out.samples, opts.y);
    } catch (e) {
      out.samples.dispose();
      throw e;
    }
  }
  return { ...out, residual };
}
