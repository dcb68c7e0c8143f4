import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors';

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
    child.on('error', rej);
    child.on('exit', (code, signal) => res(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}
