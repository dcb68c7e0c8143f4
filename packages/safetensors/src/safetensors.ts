import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue } from '@sbm/core';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from './float16';

/**
 * The safetensors layout (huggingface/safetensors, docs "Format"): an unsigned 64-bit little-endian header length N,
 * N bytes of UTF-8 JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { string: string } }`,
 * then one little-endian byte buffer; offsets are relative to the start of that buffer.
 */

/** Storage dtypes this package reads and writes. */
export type SafetensorsDtype =
  'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** The tfjs dtype a stored dtype becomes. */
export type TfDtype = 'float32' | 'int32' | 'bool';

const BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export const SAFETENSORS_DTYPES = Object.keys(BYTES) as SafetensorsDtype[];

/** Dtypes of the format that exist but that tfjs has no home for (or that this package does not convert). */
const KNOWN_UNSUPPORTED = ['U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'C64', 'C128'];

/** Same cap as the reference implementation (MAX_HEADER_SIZE): a larger header is treated as corrupt. */
export const MAX_HEADER_BYTES = 100_000_000;

export function tfDtypeOf(dtype: SafetensorsDtype): TfDtype {
  if (dtype === 'BOOL') return 'bool';
  return dtype[0] === 'F' || dtype === 'BF16' ? 'float32' : 'int32';
}

/** One decoded tensor as plain data, ready for `tf.tensor(values, shape, tfDtype)`. */
export interface RawTensor {
  /** The dtype stored in the file. */
  dtype: SafetensorsDtype;
  /** The tfjs dtype `values` is laid out for (F16/BF16/F64 → float32, integer types → int32, BOOL → bool). */
  tfDtype: TfDtype;
  shape: number[];
  /** Float32Array for float32, Int32Array for int32, Uint8Array (0/1) for bool. */
  values: Float32Array | Int32Array | Uint8Array;
}

export interface DecodedRaw {
  tensors: Record<string, RawTensor>;
  metadata: Record<string, string>;
  /** Lossy conversions made while decoding (F64 → float32), one line per tensor. */
  notes: string[];
}

export interface Decoded {
  tensors: Record<string, tf.Tensor>;
  metadata: Record<string, string>;
  notes: string[];
}

/** Input of the raw encoder: the values are converted to `dtype` on the way out. */
export interface RawEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  values: ArrayLike<number>;
}

export type TensorEntry = { name: string; tensor: tf.Tensor; dtype?: SafetensorsDtype };
export type TensorInput = Record<string, tf.Tensor> | TensorEntry[];

export interface EncodeOptions {
  /**
   * Storage dtype for float32 tensors without their own `dtype` (default 'F32'); 'F16' and 'BF16' halve the file,
   * rounding to nearest even.
   */
  floatDtype?: 'F32' | 'F16' | 'BF16' | 'F64';
  /** Storage dtype for int32 tensors without their own `dtype` (default 'I32'). */
  intDtype?: 'I32' | 'I64';
}

function corrupt(what: string, details: Record<string, unknown> = {}): SbmError {
  return new SbmError('CORRUPT_CHECKPOINT', `safetensors: ${what}`, { format: 'safetensors', ...details });
}

/** Sets an own enumerable property, safe for any name (a tensor may be called "__proto__"). */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseHeader(bytes: Uint8Array): {
  entries: HeaderEntry[];
  metadata: Record<string, string>;
  dataStart: number;
} {
  if (!(bytes instanceof Uint8Array)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `decodeSafetensors: bytes: expected a Uint8Array, got ${describeValue(bytes)}`,
    );
  }
  if (bytes.length < 8) {
    throw corrupt(`file too short: expected at least 8 bytes (the header length), got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER_BYTES) {
    throw corrupt(`header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`, { headerLength: n });
  }
  if (8 + n > bytes.length) {
    throw corrupt(
      `header length ${n} runs past the end of the file: expected at least ${8 + n} bytes, got ${bytes.length}`,
      { headerLength: n, fileLength: bytes.length },
    );
  }
  if (n < 2 || bytes[8] !== 0x7b) {
    throw corrupt(
      `the header must be a JSON object starting with '{', got ${n < 1 ? 'an empty header' : `byte 0x${bytes[8].toString(16)}`}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw corrupt('the header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw corrupt(`the header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw corrupt(`the header must be a JSON object, got ${Array.isArray(json) ? 'an array' : describeValue(json)}`);
  }
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) {
        throw corrupt(`__metadata__ must be an object of strings, got ${describeValue(info)}`);
      }
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') throw corrupt(`__metadata__.${k}: expected a string, got ${describeValue(v)}`);
        setOwn(metadata, k, v);
      }
      continue;
    }
    entries.push(parseEntry(name, info));
  }
  return { entries, metadata, dataStart: 8 + n };
}

function parseEntry(name: string, info: unknown): HeaderEntry {
  if (info === null || typeof info !== 'object' || Array.isArray(info)) {
    throw corrupt(`tensor "${name}": expected {dtype, shape, data_offsets}, got ${describeValue(info)}`, {
      tensor: name,
    });
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in BYTES)) {
    if (typeof dtype === 'string' && KNOWN_UNSUPPORTED.includes(dtype)) {
      throw new SbmError(
        'UNSUPPORTED',
        `safetensors: tensor "${name}": dtype ${dtype} is not supported (supported: ${SAFETENSORS_DTYPES.join(', ')})`,
        { tensor: name, dtype },
      );
    }
    throw corrupt(`tensor "${name}": unknown dtype ${describeValue(dtype)}`, { tensor: name });
  }
  const isDim = (d: unknown): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0;
  if (!Array.isArray(shape) || !shape.every(isDim)) {
    throw corrupt(`tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`, {
      tensor: name,
    });
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isDim) || offsets[0] > offsets[1]) {
    throw corrupt(
      `tensor "${name}": data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`,
      {
        tensor: name,
      },
    );
  }
  const [begin, end] = offsets as number[];
  const expected = numel(shape) * BYTES[dtype as SafetensorsDtype];
  if (end - begin !== expected) {
    throw corrupt(
      `tensor "${name}": ${dtype} of shape [${shape.join(', ')}] needs ${expected} bytes, data_offsets [${begin}, ${end}] span ${end - begin}`,
      { tensor: name, expected, found: end - begin },
    );
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end };
}

/**
 * Checks the byte ranges the way the reference reader does: sorted by offset they tile the data buffer exactly —
 * the first begins at 0, each begins where the previous ended (no gap, no overlap), and the last ends at its end.
 */
function validateLayout(entries: HeaderEntry[], bufferLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of sorted) {
    if (e.begin !== expected) {
      const what = e.begin < expected ? 'overlaps the previous tensor' : 'leaves a gap after the previous tensor';
      throw corrupt(`tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] ${what} (expected begin ${expected})`, {
        tensor: e.name,
        expected,
        found: e.begin,
      });
    }
    expected = e.end;
  }
  if (expected !== bufferLength) {
    throw corrupt(
      `the data buffer holds ${bufferLength} bytes but the tensors account for ${expected}` +
        (bufferLength < expected ? ' (file truncated?)' : ' (trailing bytes)'),
      { expected, found: bufferLength },
    );
  }
}

function convert(e: HeaderEntry, data: Uint8Array, notes: string[]): RawTensor['values'] {
  const count = numel(e.shape);
  const view = new DataView(data.buffer, data.byteOffset + e.begin, e.end - e.begin);
  switch (e.dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      // tfjs has no float64; the values are rounded to single precision (and beyond ±3.4e38 become ±Inf).
      notes.push(`${e.name}: F64 rounded to float32`);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(view.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = bfloat16BitsToFloat32(view.getUint16(2 * i, true));
      return out;
    }
    case 'I32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    }
    case 'I64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const lo = view.getInt32(8 * i, true);
        const hi = view.getInt32(8 * i + 4, true);
        // A 64-bit value fits in int32 exactly when its high word is the sign extension of its low word.
        if (hi !== lo >> 31) {
          const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          throw new SbmError(
            'UNSUPPORTED',
            `safetensors: tensor "${e.name}": I64 value ${v} at index ${i} does not fit in int32 (tfjs has no int64)`,
            { tensor: e.name, index: i },
          );
        }
        out[i] = lo;
      }
      return out;
    }
    case 'U32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getUint32(4 * i, true);
        if (v > 0x7fffffff) {
          throw new SbmError(
            'UNSUPPORTED',
            `safetensors: tensor "${e.name}": U32 value ${v} at index ${i} does not fit in int32`,
            { tensor: e.name, index: i },
          );
        }
        out[i] = v;
      }
      return out;
    }
    case 'I16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, true);
      return out;
    }
    case 'U16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, true);
      return out;
    }
    case 'I8': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      return out;
    }
    case 'U8': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i);
      return out;
    }
    case 'BOOL': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) {
        const b = view.getUint8(i);
        if (b > 1) {
          throw corrupt(`tensor "${e.name}": BOOL byte ${b} at index ${i} is neither 0 nor 1`, {
            tensor: e.name,
            index: i,
          });
        }
        out[i] = b;
      }
      return out;
    }
  }
}

/** Decodes a safetensors file into plain typed arrays (no tensors are created). */
export function decodeSafetensorsRaw(bytes: Uint8Array): DecodedRaw {
  const { entries, metadata, dataStart } = parseHeader(bytes);
  const data = bytes.subarray(dataStart);
  validateLayout(entries, data.length);
  const notes: string[] = [];
  const tensors: Record<string, RawTensor> = {};
  for (const e of entries) {
    setOwn(tensors, e.name, {
      dtype: e.dtype,
      tfDtype: tfDtypeOf(e.dtype),
      shape: e.shape,
      values: convert(e, data, notes),
    });
  }
  return { tensors, metadata, notes };
}

/**
 * Decodes a safetensors file into tfjs tensors (the caller owns and disposes them). F16, BF16 and F64 become float32,
 * integer dtypes int32 (range-checked), BOOL bool.
 */
export function decodeSafetensors(bytes: Uint8Array): Decoded {
  const raw = decodeSafetensorsRaw(bytes);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, t] of Object.entries(raw.tensors)) setOwn(tensors, name, tf.tensor(t.values, t.shape, t.tfDtype));
  return { tensors, metadata: raw.metadata, notes: raw.notes };
}

/** Reads only the header: names, dtypes, shapes, byte ranges and metadata (validated like a full decode). */
export function readSafetensorsHeader(bytes: Uint8Array): {
  tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; dataOffsets: [number, number] }>;
  metadata: Record<string, string>;
  dataStart: number;
} {
  const { entries, metadata, dataStart } = parseHeader(bytes);
  validateLayout(entries, bytes.length - dataStart);
  const tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; dataOffsets: [number, number] }> = {};
  for (const e of entries) setOwn(tensors, e.name, { dtype: e.dtype, shape: e.shape, dataOffsets: [e.begin, e.end] });
  return { tensors, metadata, dataStart };
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

function checkName(name: unknown, seen: Set<string>): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `encodeSafetensors: tensor name: expected a non-empty string, got ${describeValue(name)}`,
    );
  }
  if (name === '__metadata__') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      'encodeSafetensors: the tensor name "__metadata__" is reserved by the format',
    );
  }
  if (seen.has(name)) throw new SbmError('DUPLICATE_NAME', `encodeSafetensors: tensor name "${name}" appears twice`);
  seen.add(name);
  return name;
}

function writeValues(view: DataView, e: RawEntry): void {
  const v = e.values;
  const n = v.length;
  const intCheck = (x: number, i: number, lo: number, hi: number): number => {
    if (!Number.isInteger(x) || x < lo || x > hi) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `encodeSafetensors: tensor "${e.name}": value ${describeValue(x)} at index ${i} is not a ${e.dtype} (integer in [${lo}, ${hi}])`,
        { tensor: e.name, index: i },
      );
    }
    return x;
  };
  switch (e.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) view.setFloat32(4 * i, v[i], true);
      return;
    case 'F64':
      for (let i = 0; i < n; i++) view.setFloat64(8 * i, v[i], true);
      return;
    case 'F16':
      for (let i = 0; i < n; i++) view.setUint16(2 * i, float32ToFloat16Bits(v[i]), true);
      return;
    case 'BF16':
      for (let i = 0; i < n; i++) view.setUint16(2 * i, float32ToBfloat16Bits(v[i]), true);
      return;
    case 'I64':
      for (let i = 0; i < n; i++) {
        const x = intCheck(v[i], i, -(2 ** 31), 2 ** 31 - 1);
        view.setInt32(8 * i, x, true);
        view.setInt32(8 * i + 4, x < 0 ? -1 : 0, true);
      }
      return;
    case 'I32':
      for (let i = 0; i < n; i++) view.setInt32(4 * i, intCheck(v[i], i, -(2 ** 31), 2 ** 31 - 1), true);
      return;
    case 'U32':
      for (let i = 0; i < n; i++) view.setUint32(4 * i, intCheck(v[i], i, 0, 2 ** 32 - 1), true);
      return;
    case 'I16':
      for (let i = 0; i < n; i++) view.setInt16(2 * i, intCheck(v[i], i, -32768, 32767), true);
      return;
    case 'U16':
      for (let i = 0; i < n; i++) view.setUint16(2 * i, intCheck(v[i], i, 0, 65535), true);
      return;
    case 'I8':
      for (let i = 0; i < n; i++) view.setInt8(i, intCheck(v[i], i, -128, 127));
      return;
    case 'U8':
      for (let i = 0; i < n; i++) view.setUint8(i, intCheck(v[i], i, 0, 255));
      return;
    case 'BOOL':
      for (let i = 0; i < n; i++) view.setUint8(i, intCheck(v[i], i, 0, 1));
      return;
  }
}

function checkMetadata(metadata: unknown): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `encodeSafetensors: metadata: expected an object of strings, got ${describeValue(metadata)}`,
    );
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `encodeSafetensors: metadata.${k}: expected a string (the format stores string → string; JSON.stringify objects), got ${describeValue(v)}`,
      );
    }
  }
  return metadata as Record<string, string>;
}

/**
 * Encodes plain arrays. Tensors are laid out by decreasing element size, then by name — the reference writer's
 * order up to ties — so every tensor starts at an offset that is a multiple of its element size; the header is padded
 * with spaces to a multiple of 8 bytes, as the reference writer does, so the data buffer starts 8-aligned.
 */
export function encodeSafetensorsRaw(entries: RawEntry[], metadata?: Record<string, string>): Uint8Array {
  const meta = checkMetadata(metadata);
  if (!Array.isArray(entries)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `encodeSafetensors: tensors: expected an array or a record, got ${describeValue(entries)}`,
    );
  }
  const seen = new Set<string>();
  for (const e of entries) {
    checkName(e.name, seen);
    if (!(e.dtype in BYTES)) {
      throw new SbmError(
        'UNKNOWN_NAME',
        `encodeSafetensors: tensor "${e.name}": dtype: expected one of ${SAFETENSORS_DTYPES.join(', ')}, got ${describeValue(e.dtype)}`,
      );
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SbmError(
        'INVALID_SHAPE',
        `encodeSafetensors: tensor "${e.name}": shape must be non-negative integers, got ${JSON.stringify(e.shape)}`,
      );
    }
    if (e.values.length !== numel(e.shape)) {
      throw new SbmError(
        'INVALID_SHAPE',
        `encodeSafetensors: tensor "${e.name}": shape [${e.shape.join(', ')}] holds ${numel(e.shape)} values, got ${e.values.length}`,
      );
    }
  }
  const ordered = [...entries].sort(
    (a, b) => BYTES[b.dtype] - BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  // Written member by member (not JSON.stringify of an object) so the members keep the data order whatever the names.
  const members: string[] = [];
  if (meta) members.push(`"__metadata__":${JSON.stringify(meta)}`);
  let offset = 0;
  for (const e of ordered) {
    const size = numel(e.shape) * BYTES[e.dtype];
    members.push(
      `${JSON.stringify(e.name)}:${JSON.stringify({ dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + size] })}`,
    );
    offset += size;
  }
  const json = new TextEncoder().encode(`{${members.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, padded % 2 ** 32, true);
  view.setUint32(4, Math.floor(padded / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let at = 8 + padded;
  for (const e of ordered) {
    const size = numel(e.shape) * BYTES[e.dtype];
    writeValues(new DataView(out.buffer, at, size), e);
    at += size;
  }
  return out;
}

function defaultDtype(t: tf.Tensor, name: string, opts: EncodeOptions): SafetensorsDtype {
  switch (t.dtype) {
    case 'float32':
      return opts.floatDtype ?? 'F32';
    case 'int32':
      return opts.intDtype ?? 'I32';
    case 'bool':
      return 'BOOL';
    default:
      throw new SbmError('UNSUPPORTED', `encodeSafetensors: tensor "${name}": dtype ${t.dtype} cannot be stored`);
  }
}

function toEntries(tensors: TensorInput): TensorEntry[] {
  if (Array.isArray(tensors)) return tensors;
  if (tensors === null || typeof tensors !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `encodeSafetensors: tensors: expected a record or an array of {name, tensor}, got ${describeValue(tensors)}`,
    );
  }
  return Object.entries(tensors).map(([name, tensor]) => ({ name, tensor }));
}

function checkEntryTensor(e: TensorEntry): void {
  if (!(e?.tensor instanceof tf.Tensor)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `encodeSafetensors: tensor "${String(e?.name)}": expected a tf.Tensor, got ${describeValue(e?.tensor)}`,
    );
  }
  if (e.tensor.isDisposed) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `encodeSafetensors: tensor "${e.name}": the tensor has already been disposed`,
    );
  }
}

/**
 * Encodes tfjs tensors (read back synchronously with dataSync; see encodeSafetensorsAsync for GPU backends).
 * A tensor's storage dtype is its entry's `dtype`, else the option for its tfjs dtype (float32 → F32, int32 → I32,
 * bool → BOOL by default).
 */
export function encodeSafetensors(
  tensors: TensorInput,
  metadata?: Record<string, string>,
  opts: EncodeOptions = {},
): Uint8Array {
  const entries = toEntries(tensors);
  entries.forEach(checkEntryTensor);
  return encodeSafetensorsRaw(
    entries.map((e) => ({
      name: e.name,
      dtype: e.dtype ?? defaultDtype(e.tensor, e.name, opts),
      shape: e.tensor.shape,
      values: e.tensor.dataSync() as ArrayLike<number>,
    })),
    metadata,
  );
}

/** As encodeSafetensors, reading tensors back with `await tensor.data()` (no blocking read on GPU backends). */
export async function encodeSafetensorsAsync(
  tensors: TensorInput,
  metadata?: Record<string, string>,
  opts: EncodeOptions = {},
): Promise<Uint8Array> {
  const entries = toEntries(tensors);
  entries.forEach(checkEntryTensor);
  const values = await Promise.all(entries.map((e) => e.tensor.data()));
  return encodeSafetensorsRaw(
    entries.map((e, i) => ({
      name: e.name,
      dtype: e.dtype ?? defaultDtype(e.tensor, e.name, opts),
      shape: e.tensor.shape,
      values: values[i] as ArrayLike<number>,
    })),
    metadata,
  );
}
