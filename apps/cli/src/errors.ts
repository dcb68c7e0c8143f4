import { isSbmError } from '@sbm/core';

/** A problem with what the user asked for (flag, value, file): one line on stderr and exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit code for a run interrupted by SIGINT (128 + 2, the shell convention). */
export const EXIT_INTERRUPTED = 130;
export const EXIT_USAGE = 2;

/**
 * SbmError codes that mean "the input was wrong" (a flag value, a missing or corrupt file, a checkpoint that does not
 * fit the request) rather than a bug or a failed computation.
 */
const USER_CODES = new Set([
  'INVALID_ARGUMENT',
  'INVALID_SHAPE',
  'UNKNOWN_NAME',
  'DUPLICATE_NAME',
  'BACKEND_UNAVAILABLE',
  'UNSUPPORTED',
  'CORRUPT_CHECKPOINT',
  'CONFIG_MISMATCH',
  'FILE_NOT_FOUND',
  'IO_ERROR',
]);

/** Exit code and one-line message for an error thrown by a command. */
export function describeError(e: unknown): { code: number; line: string } {
  if (e instanceof UsageError) return { code: EXIT_USAGE, line: e.message };
  if (isSbmError(e)) {
    const first = e.message.split('\n')[0];
    return { code: USER_CODES.has(e.code) ? EXIT_USAGE : 1, line: `${first} [${e.code}]` };
  }
  const msg = e instanceof Error ? e.message : String(e);
  return { code: 1, line: msg.split('\n')[0] };
}
