import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { atomicWriteFile as writeFileAtomic } from '@sbm/backend-node';
import { UsageError } from './errors';

/** Atomic file write (temporary file in the same folder, flushed, renamed over the target): @sbm/datasets' own. */
export { writeFileAtomic };

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/** Parses a flag value as an integer ≥ min, or fails naming the flag. */
export function intArg(flag: string, min = 1): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^[-+]?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new UsageError(`${flag}: expected an integer ≥ ${min}, got "${v}"`);
    }
    return n;
  };
}

/** Parses a flag value as a finite number > 0 (or ≥ 0 with allowZero). */
export function positiveArg(flag: string, allowZero = false): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
      throw new UsageError(`${flag}: expected a number ${allowZero ? '≥' : '>'} 0, got "${v}"`);
    }
    return n;
  };
}

/** Parses a flag value as a JSON object (sampler options); a UsageError otherwise. */
export function jsonObjectArg(flag: string): (v: string) => Record<string, unknown> {
  return (v: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch (e) {
      throw new UsageError(`${flag}: expected a JSON object, got "${v}" (${(e as Error).message})`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new UsageError(`${flag}: expected a JSON object, got "${v}"`);
    }
    return parsed as Record<string, unknown>;
  };
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch {
    return false;
  }
}

export function mean(v: number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}

/** Standard error of the mean, sample std / √n (0 for n < 2). */
export function stdErr(v: number[]): number {
  if (v.length < 2) return 0;
  const m = mean(v);
  const s2 = v.reduce((a, b) => a + (b - m) * (b - m), 0) / (v.length - 1);
  return Math.sqrt(s2 / v.length);
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Version of an installed package, found by walking up from its resolved entry to its package.json. */
export function versionOf(name: string, missing = 'not installed'): string {
  try {
    let dir = dirname(createRequire(import.meta.url).resolve(name));
    for (let i = 0; i < 6; i++) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? '?';
      } catch {
        // not here: keep walking up
      }
      dir = dirname(dir);
    }
  } catch {
    // not resolvable from the CLI
  }
  return missing;
}
