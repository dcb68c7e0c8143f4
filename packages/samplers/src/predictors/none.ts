import type { CorrectorFactory, PredictorFactory } from './types';

/** No predictor: the state passes unchanged (corrector-only sampling). */
export const nonePredictor: PredictorFactory = () => ({ update: (x) => ({ x, xMean: x }) });

/** No corrector. */
export const noneCorrector: CorrectorFactory = () => ({ update: (x) => ({ x, xMean: x }) });
