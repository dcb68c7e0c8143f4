// PLACEHOLDER written by demo-core; demo-digits replaces this file
import type { DemoClient } from '../client';
import type { SbmDemoHook } from '../hook';

/** Builds the Digits tab inside `root`; fills `hook.digits` with its test hook. */
export function mountDigits(root: HTMLElement, _client: DemoClient, _hook: SbmDemoHook): void {
  root.textContent = 'Digits: coming soon.';
}
