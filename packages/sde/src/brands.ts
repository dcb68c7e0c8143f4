import { hasBrand } from '@sbm/core';
import type { VeSde } from './ve';
import type { SubVpSde, VpSde } from './vp';
import type { TutorialVeSde } from './tutorial-ve';

// Class checks that hold across copies of @sbm/sde (ESM and CJS in one process), where instanceof does not.
export const isVeSde = (v: unknown): v is VeSde => hasBrand(v, 'sde/ve');
export const isVpSde = (v: unknown): v is VpSde => hasBrand(v, 'sde/vp');
export const isSubVpSde = (v: unknown): v is SubVpSde => hasBrand(v, 'sde/subvp');
export const isTutorialVeSde = (v: unknown): v is TutorialVeSde => hasBrand(v, 'sde/tutorial-ve');
