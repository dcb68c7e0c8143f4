export { GaussianMixture, PerturbedGaussianMixture } from './mixture';
export type { GaussianMixtureOptions, TimeArg } from './mixture';
export { mixture2d, mixture16d } from './fixtures';
export { symmetricEigen, cholesky } from './linalg';
