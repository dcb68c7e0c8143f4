/**
 * Stable error codes. Callers branch on `code`; the message is for humans and names the argument,
 * what was expected and what came.
 */
export type SbmErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_SHAPE'
  | 'NON_FINITE'
  | 'UNKNOWN_NAME'
  | 'DUPLICATE_NAME'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_NOT_READY'
  | 'UNSUPPORTED'
  | 'CORRUPT_CHECKPOINT'
  | 'CORRUPT_DATA'
  | 'CONFIG_MISMATCH'
  | 'FILE_NOT_FOUND'
  | 'IO_ERROR'
  /** A checkpoint location is locked by another live writer (details: holder { pid, hostname, startedAt }). */
  | 'LOCKED'
  | 'ABORTED'
  | 'TENSOR_LEAK';

const ERROR_BRAND = Symbol.for('@sbm/brand/error');

export class SbmError extends Error {
  readonly code: SbmErrorCode;
  readonly details?: Record<string, unknown>;

  /**
   * `e instanceof SbmError` holds for errors thrown by any copy of @sbm/core in the process (the CJS build next to
   * the ESM one, or two installed versions): they carry the same Symbol.for brand.
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[ERROR_BRAND] === true;
  }

  constructor(code: SbmErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SbmError';
    Object.defineProperty(this, ERROR_BRAND, { value: true, enumerable: false });
    this.code = code;
    this.details = details;
  }
}

export function isSbmError(e: unknown, code?: SbmErrorCode): e is SbmError {
  return e instanceof SbmError && (code === undefined || e.code === code);
}

/** Short human description of a received value for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (Array.isArray(v)) return `array of length ${v.length}`;
  if (typeof v === 'object' && v !== null && 'shape' in v && Array.isArray((v as { shape: unknown }).shape)) {
    return `tensor of shape [${(v as { shape: number[] }).shape.join(', ')}]`;
  }
  return typeof v;
}
