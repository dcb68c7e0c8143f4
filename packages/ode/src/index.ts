export { dopri5 } from './dopri5';
export type { Dopri5Options } from './dopri5';
export { euler, heun, rk4, linspace, checkGrid } from './fixed-step';
export { integrate, ODE_METHODS } from './integrate';
export type { IntegrateOptions, OdeMethod } from './integrate';
export type { OdeFn, OdeOptions, OdeProgress, OdeResult } from './types';
