import { SbmError } from '@sbm/core';

/**
 * The error code for a data file that does not hold what its format promises (bad magic number, truncated,
 * undecodable).
 */
export const CORRUPT_DATA_CODE = 'CORRUPT_DATA' as const;

/** A corrupt-data error naming the file, what was expected and what was found. */
export function corruptData(file: string, what: string, expected?: unknown, found?: unknown): SbmError {
  const tail = expected === undefined ? '' : `: expected ${String(expected)}, found ${String(found)}`;
  return new SbmError(CORRUPT_DATA_CODE, `${file}: ${what}${tail}`, { file, expected, found });
}
