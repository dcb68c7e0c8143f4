export { toy, toyArray, toyNames, registerToy, ring8Means, grid25Means, SWISS_ROLL_SCALE } from './toy';
export type { ToyGenerator, ToyOptions } from './toy';
export { Rng } from './rng';
export { parseIdx, parseIdxImages, parseIdxLabels, isGzip, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from './idx';
export type { IdxArray, IdxType } from './idx';
export { mnistFromIdx } from './mnist';
export type { MnistData, MnistOptions } from './mnist';
export { Batcher, batches, gatherBatch } from './batches';
export type { Batch, BatchData, BatchPosition, BatcherOptions } from './batches';
export { gridFromArray, makeGrid } from './grid';
export type { GridImage, GridOptions } from './grid';
export { convertChannels, squareImage } from './image';
export type { Image8, SquareOptions } from './image';
export { checkRange } from './range';
export type { DataRange } from './range';
export { CORRUPT_DATA_CODE } from './errors';
export {
  colorizeDigits,
  classPalette,
  drawDigitColors,
  grayLevel,
  chroma,
  GRAY_WEIGHTS,
  COLORED_MNIST_DEFAULTS,
} from './colored-mnist';
export type { ColoredMnistData, ColorizeOptions, DigitColorOptions, DigitColors } from './colored-mnist';
