import { SbmError, checkImagePixels, type ImageOutput } from '@sbm/core';
import { download } from './download';

/** Gray / RGB / RGBA bytes → canvas ImageData (RGBA, opaque where there was no alpha). */
export function toImageData(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): ImageData {
  checkImagePixels(pixels, width, height, channels, 'toImageData');
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0, j = 0; i < width * height; i++, j += channels) {
    const o = i * 4;
    if (channels === 1) {
      rgba[o] = rgba[o + 1] = rgba[o + 2] = pixels[j];
      rgba[o + 3] = 255;
    } else {
      rgba[o] = pixels[j];
      rgba[o + 1] = pixels[j + 1];
      rgba[o + 2] = pixels[j + 2];
      rgba[o + 3] = channels === 4 ? pixels[j + 3] : 255;
    }
  }
  return new ImageData(rgba, width, height);
}

/** Draws the image onto `canvas`, resizing the canvas to it. */
export function drawToCanvas(
  canvas: HTMLCanvasElement | OffscreenCanvas,
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: 1 | 3 | 4,
): void {
  const data = toImageData(pixels, width, height, channels);
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new SbmError('UNSUPPORTED', 'drawToCanvas: the canvas has no 2d context');
  ctx.putImageData(data, 0, 0);
}

/** PNG through the browser's own encoder (OffscreenCanvas.convertToBlob, else canvas.toBlob). */
export class CanvasImageOutput implements ImageOutput {
  async encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<Uint8Array> {
    checkImagePixels(pixels, width, height, channels, 'encodePng');
    let blob: Blob | null;
    if (typeof OffscreenCanvas !== 'undefined') {
      const c = new OffscreenCanvas(width, height);
      drawToCanvas(c, pixels, width, height, channels);
      blob = await c.convertToBlob({ type: 'image/png' });
    } else if (globalThis.document) {
      const c = globalThis.document.createElement('canvas');
      drawToCanvas(c, pixels, width, height, channels);
      blob = await new Promise<Blob | null>((resolve) => c.toBlob(resolve, 'image/png'));
    } else {
      throw new SbmError('UNSUPPORTED', 'encodePng: needs OffscreenCanvas or a document with <canvas>');
    }
    if (!blob) throw new SbmError('IO_ERROR', 'encodePng: the browser returned no PNG');
    return new Uint8Array(await blob.arrayBuffer());
  }

  /** "Writes" by offering the PNG as a download named `location`. */
  async writePng(
    location: string,
    pixels: Uint8Array,
    width: number,
    height: number,
    channels: 1 | 3 | 4,
  ): Promise<void> {
    download(await this.encodePng(pixels, width, height, channels), location, 'image/png');
  }
}

export function canvasImageOutput(): CanvasImageOutput {
  return new CanvasImageOutput();
}
