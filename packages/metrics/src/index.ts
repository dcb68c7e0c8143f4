export { slicedWasserstein, mmd, mmd2, medianHeuristic, w2Squared1d } from './distances';
export type { SlicedWassersteinOptions, MmdOptions } from './distances';
export { sampleMean, sampleCovariance } from './samples';
export type { SampleSet } from './samples';
