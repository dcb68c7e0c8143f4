import { decode, encode } from 'fast-png';
import { SbmError, checkImagePixels, describeValue, type ImageOutput } from '@sbm/core';
import { atomicWriteFile, nodeFs, type FsOps } from './atomic';

/**
 * 8-bit gray, RGB or RGBA pixels (row-major, interleaved) → PNG bytes, in pure JavaScript (fast-png): the one PNG
 * encoder of sbm's Node code (image output, data-set grids).
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Uint8Array {
  checkImagePixels(pixels, width, height, channels, 'encodePng');
  return encode({ width, height, data: pixels, channels, depth: 8 });
}

/** PNG encoding in pure JavaScript (fast-png), so no native image library is needed. */
export class PngOutput implements ImageOutput {
  constructor(private readonly fs: FsOps = nodeFs) {}

  encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Uint8Array {
    return encodePng(pixels, width, height, channels);
  }

  /** Writes a PNG file atomically (temporary file + rename). */
  async writePng(
    location: string,
    pixels: Uint8Array,
    width: number,
    height: number,
    channels: 1 | 3 | 4,
  ): Promise<void> {
    if (typeof location !== 'string' || !location) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `writePng: location: expected a file path, got ${describeValue(location)}`,
      );
    }
    const png = this.encodePng(pixels, width, height, channels);
    await atomicWriteFile(location, png, this.fs);
  }
}

/** Decoded 8-bit PNG (for tests and for reading data sets of PNG files). */
export function decodePng(bytes: Uint8Array): { width: number; height: number; channels: number; pixels: Uint8Array } {
  let img: ReturnType<typeof decode>;
  try {
    img = decode(bytes);
  } catch (e) {
    throw new SbmError('INVALID_ARGUMENT', `decodePng: bytes: not a PNG image (${String(e)})`);
  }
  if (img.depth !== 8 || img.palette) {
    throw new SbmError('UNSUPPORTED', `decodePng: only 8-bit non-palette PNGs are supported, got depth ${img.depth}`);
  }
  return { width: img.width, height: img.height, channels: img.channels, pixels: img.data as Uint8Array };
}

export function pngOutput(): PngOutput {
  return new PngOutput();
}
