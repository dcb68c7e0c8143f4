import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors';
import { onStopSignal, SIGNAL_EXIT, type StopSignal } from '../signals';

export const BENCH_SCRIPT = join('tools', 'bench', 'bin', 'bench.mjs');

/** The sbm repository's benchmark runner, searched from the working directory upwards. */
export function findBenchScript(from = process.cwd()): string | undefined {
  let dir = resolve(from);
  for (;;) {
    const p = join(dir, BENCH_SCRIPT);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Runs `node tools/bench/bin/bench.mjs <suite> [args]` with this terminal; exits with its status. */
export async function benchCommand(suite: string, rest: string[]): Promise<number> {
  const script = findBenchScript();
  if (!script) {
    throw new UsageError(`bench: ${BENCH_SCRIPT} not found in ${process.cwd()} or above (run inside an sbm clone)`);
  }
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [script, suite, ...rest], {
      stdio: 'inherit',
      cwd: dirname(dirname(dirname(dirname(script)))),
    });
    // A signal sent to sbm alone (kill, a CI time-out) reaches the suite too: no orphan keeps running.
    const off = onStopSignal((s) => child.kill(s));
    child.on('error', (e) => {
      off();
      rej(e);
    });
    child.on('exit', (code, signal) => {
      off();
      res(code ?? SIGNAL_EXIT[signal as StopSignal] ?? 1);
    });
  });
}
