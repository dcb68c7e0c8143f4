export { CosineVpSde, registerCosineVp, MAX_DISCRETE_BETA } from './cosine-vp';
export type { CosineVpSdeOptions } from './cosine-vp';
