import { expect } from 'vitest';
import { SbmError } from '@sbm/core';

/** Asserts that `e` is an SbmError with `code` and a message matching `message`. */
export function expectSbmError(e: unknown, code: string, message: RegExp): void {
  expect(e, `expected an SbmError, got ${String(e)}`).toBeInstanceOf(SbmError);
  expect((e as SbmError).code).toBe(code);
  expect((e as SbmError).message).toMatch(message);
}

/** Asserts that `fn()` throws an SbmError with `code` and a message matching `message`. */
export function expectThrowsSbm(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    expectSbmError(e, code, message);
    return;
  }
  throw new Error('expected an SbmError');
}

/** Asserts that a promise (or an async function's) rejects with an SbmError with `code` and a matching message. */
export async function expectRejectsSbm(
  p: Promise<unknown> | (() => unknown),
  code: string,
  message: RegExp,
): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expectSbmError(e, code, message);
    return;
  }
  throw new Error('expected an SbmError');
}
