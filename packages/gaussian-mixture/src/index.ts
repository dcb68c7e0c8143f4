export { GaussianMixture, PerturbedGaussianMixture } from './mixture';
export type { GaussianMixtureOptions, TimeArg } from './mixture';
export { mixture2d, mixture16d } from './fixtures';
// The linear algebra lives in @sbm/metrics; re-exported for code that imported it here.
export { symmetricEigen, cholesky } from '@sbm/metrics';
