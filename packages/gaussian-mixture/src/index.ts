export { GaussianMixture, PerturbedGaussianMixture } from './mixture';
export type { GaussianMixtureOptions, TimeArg } from './mixture';
export type { FlowMapOptions } from './flow-map';
export { CoordinateConditional } from './posterior';
export type { LinearGaussianMeasurement } from './posterior';
export { gaussian2d, mixture2d, mixture16d } from './fixtures';
// The linear algebra lives in @sbm/metrics; re-exported for code that imported it here.
export { symmetricEigen, cholesky } from '@sbm/metrics';
