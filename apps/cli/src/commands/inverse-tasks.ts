/** The measurement commands: which registered operator each builds and the method it runs by default. */
export const INVERSE_TASKS = {
  inpaint: {
    title: 'Inpainting',
    operator: 'mask',
    method: 'projection',
    measurement: 'the pixels a mask keeps',
    dataSet: 'the MNIST test set (colored-mnist:test for RGB models)',
    seeded: 'random mask (--mask random)',
  },
  colorize: {
    title: 'Colorization',
    operator: 'grayscale',
    method: 'projection',
    measurement: 'their gray channel',
    dataSet: 'the colored-mnist test set',
    seeded: undefined,
  },
  superres: {
    title: 'Super-resolution',
    operator: 'downsample',
    method: 'lambda-projection',
    measurement: 'k×k block averages',
    dataSet: 'the MNIST test set (colored-mnist:test for RGB models)',
    seeded: undefined,
  },
  cs: {
    title: 'Compressed sensing',
    operator: 'gaussian',
    method: 'lambda-projection',
    measurement: 'random Gaussian projections',
    dataSet: 'the MNIST test set (colored-mnist:test for RGB models)',
    seeded: 'Gaussian measurement matrix',
  },
  ct: {
    title: 'Sparse-view CT',
    operator: 'radon',
    method: 'lambda-projection',
    measurement: 'a sparse-view parallel-beam sinogram',
    dataSet: 'the MNIST test set (colored-mnist:test for RGB models)',
    seeded: undefined,
  },
  mri: {
    title: 'Undersampled MRI',
    operator: 'mri',
    method: 'lambda-projection',
    measurement: 'undersampled k-space columns',
    dataSet: 'the MNIST test set (colored-mnist:test for RGB models)',
    seeded: 'k-space column mask',
  },
} as const;

export type InverseTask = keyof typeof INVERSE_TASKS;

/** Method settings: flag → option key of the method (each method's `keys` say which it takes). */
export const SETTING_FLAGS = {
  lambda: '--lambda',
  zeta: '--zeta',
  semantics: '--semantics',
  jumpLength: '--jump-length',
  resamplings: '--resamplings',
} as const;
