import { SbmError, describeValue } from '@sbm/core';
import { corruptData } from './errors';

/**
 * The IDX format (LeCun et al., "THE MNIST DATABASE", file-format section): a 4-byte magic number — two zero
 * bytes, a type code, the number of dimensions — then each dimension as a big-endian uint32, then the values,
 * big-endian, in row-major order.
 */

export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

const TYPES: Record<number, { type: IdxType; bytes: number }> = {
  0x08: { type: 'uint8', bytes: 1 },
  0x09: { type: 'int8', bytes: 1 },
  0x0b: { type: 'int16', bytes: 2 },
  0x0c: { type: 'int32', bytes: 4 },
  0x0d: { type: 'float32', bytes: 4 },
  0x0e: { type: 'float64', bytes: 8 },
};

export interface IdxArray {
  type: IdxType;
  /** The magic number as read (e.g. 0x00000803 for MNIST images). */
  magic: number;
  dims: number[];
  /** uint8 data is a view into the input bytes; other types are converted from big-endian into a new array. */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const hex = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses an uncompressed IDX file. `file` names it in errors. Checks the magic number, that the header is complete
 * and that exactly prod(dims)·sizeof(type) bytes follow it (truncated files and trailing bytes are both errors).
 */
export function parseIdx(bytes: Uint8Array, file = 'IDX data'): IdxArray {
  if (!(bytes instanceof Uint8Array)) {
    throw new SbmError('INVALID_ARGUMENT', `parseIdx: bytes: expected a Uint8Array, got ${describeValue(bytes)}`);
  }
  if (isGzip(bytes)) {
    throw new SbmError(
      'UNSUPPORTED',
      `${file}: the bytes are gzip-compressed; decompress them first (readIdxFile from @sbm/datasets/node does)`,
      { file },
    );
  }
  if (bytes.length < 4) throw corruptData(file, 'too short for the IDX magic number', '4 bytes', `${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const code = bytes[2];
  const ndims = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !(code in TYPES) || ndims === 0) {
    throw corruptData(
      file,
      'not an IDX file (bad magic number)',
      '0x0000TTDD with type TT in 08/09/0b/0c/0d/0e and DD >= 1',
      hex(magic),
    );
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw corruptData(file, `header truncated (${ndims} dimensions)`, `${headerBytes} bytes`, `${bytes.length}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const { type, bytes: size } = TYPES[code];
  const count = dims.reduce((a, b) => a * b, 1);
  const dataBytes = count * size;
  const found = bytes.length - headerBytes;
  if (found !== dataBytes) {
    const what = found < dataBytes ? 'truncated' : 'has trailing bytes';
    throw corruptData(file, `${what}: dims [${dims.join(', ')}] of ${type}`, `${dataBytes} data bytes`, `${found}`);
  }
  const at = headerBytes;
  let data: IdxArray['data'];
  switch (type) {
    case 'uint8':
      data = bytes.subarray(at);
      break;
    case 'int8':
      data = new Int8Array(bytes.buffer, bytes.byteOffset + at, count).slice();
      break;
    case 'int16':
      data = Int16Array.from({ length: count }, (_, i) => view.getInt16(at + 2 * i, false));
      break;
    case 'int32':
      data = Int32Array.from({ length: count }, (_, i) => view.getInt32(at + 4 * i, false));
      break;
    case 'float32':
      data = Float32Array.from({ length: count }, (_, i) => view.getFloat32(at + 4 * i, false));
      break;
    case 'float64':
      data = Float64Array.from({ length: count }, (_, i) => view.getFloat64(at + 8 * i, false));
      break;
  }
  return { type, magic, dims, data };
}

/** MNIST magic numbers: unsigned bytes with 3 dimensions (images) or 1 (labels). */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

function expectMagic(bytes: Uint8Array, file: string, magic: number, what: string): IdxArray {
  // Check the magic before parsing so a labels file passed as images is reported as such, not as a size mismatch.
  if (bytes instanceof Uint8Array && bytes.length >= 4 && !isGzip(bytes)) {
    const found = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, false);
    if (found !== magic) throw corruptData(file, `wrong magic number for ${what}`, hex(magic), hex(found));
  }
  return parseIdx(bytes, file);
}

/** An IDX images file (magic 0x00000803): count × rows × cols unsigned bytes. */
export function parseIdxImages(
  bytes: Uint8Array,
  file = 'images',
): { count: number; rows: number; cols: number; pixels: Uint8Array } {
  const a = expectMagic(bytes, file, IDX_IMAGES_MAGIC, 'an images file');
  const [count, rows, cols] = a.dims;
  return { count, rows, cols, pixels: a.data as Uint8Array };
}

/** An IDX labels file (magic 0x00000801): count unsigned bytes. */
export function parseIdxLabels(bytes: Uint8Array, file = 'labels'): { count: number; labels: Uint8Array } {
  const a = expectMagic(bytes, file, IDX_LABELS_MAGIC, 'a labels file');
  return { count: a.dims[0], labels: a.data as Uint8Array };
}
