import { expect } from 'vitest';
import { SbmError } from '@sbm/core';

export async function expectSbm(fn: () => unknown, code: string, message: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SbmError);
  expect((caught as SbmError).code).toBe(code);
  expect((caught as SbmError).message).toMatch(message);
}
