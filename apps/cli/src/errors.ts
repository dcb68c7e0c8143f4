import { isSbmError } from '@sbm/core';

/** A problem with what the user asked for (flag, value, file): one line on stderr and exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit code for a run interrupted by SIGINT (128 + 2, the shell convention; signals.ts has SIGTERM and SIGHUP). */
export const EXIT_INTERRUPTED = 130;
/** Bad input or usage: fix the command line or the file it names; running it again as it is fails again. */
export const EXIT_USAGE = 2;
/** A runtime failure: the machine, a bug, another process (LOCKED); the same command may work later. */
export const EXIT_FAILURE = 1;

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
  'CORRUPT_DATA',
  'CONFIG_MISMATCH',
  'FILE_NOT_FOUND',
  'IO_ERROR',
]);

/** I/O errors of the machine rather than of the path the user named: a full disk or a failing device. */
const RUNTIME_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'ENOMEM']);

/** Exit code and one-line message for an error thrown by a command. */
export function describeError(e: unknown): { code: number; line: string } {
  if (e instanceof UsageError) return { code: EXIT_USAGE, line: e.message };
  if (isSbmError(e)) {
    const first = e.message.split('\n')[0];
    const errno = e.details?.errno;
    const user = USER_CODES.has(e.code) && !(typeof errno === 'string' && RUNTIME_ERRNO.has(errno));
    return { code: user ? EXIT_USAGE : EXIT_FAILURE, line: `${first} [${e.code}]` };
  }
  const msg = e instanceof Error ? e.message : String(e);
  return { code: EXIT_FAILURE, line: msg.split('\n')[0] };
}

/**
 * Runs `fn`, rewording an SbmError about one of the options in `flags` ("steps: expected an integer >= 1, got 0")
 * in the words of the flag that set it ("--steps: expected ..."): the user typed the flag, not the option.
 */
export async function withFlagNames<T>(flags: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isSbmError(e) && (e.code === 'INVALID_ARGUMENT' || e.code === 'UNKNOWN_NAME')) {
      const m = /^([A-Za-z][\w.]*): ([\s\S]*)$/.exec(e.message);
      if (m && Object.prototype.hasOwnProperty.call(flags, m[1])) {
        throw new UsageError(`${flags[m[1]]}: ${m[2].split('\n')[0]}`);
      }
    }
    throw e;
  }
}
