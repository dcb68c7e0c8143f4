// Docs that run: every README code block marked `runnable` is executed against the built packages (node resolves
// @sbm/* through node_modules to packages/*/dist), and the output it promises in a following `text output` block
// is asserted.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { collectExamples, compareOutput, parseReadme } from '../src/readme-examples';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const built = ['core', 'sde', 'samplers'].every((p) => existsSync(join(root, 'packages', p, 'dist', 'index.js')));
const examples = collectExamples(root);
// Examples run inside the repository (so that bare @sbm/* imports resolve) in an ignored folder.
const runDir = join(root, '.docs-run');

describe('README example extraction', () => {
  it('finds runnable blocks, their promised output and attributes', () => {
    const md = [
      '```ts runnable timeout=5',
      'console.log(1);',
      '```',
      '',
      '```text output',
      'x 1.00',
      '```',
      '```ts',
      'not run',
      '```',
      '```sh runnable',
      'echo hi',
      '```',
    ].join('\n');
    const ex = parseReadme(md, 'R.md');
    expect(ex.map((e) => [e.lang, e.line, e.timeout, e.expected])).toEqual([
      ['ts', 1, 5, ['x 1.00']],
      ['sh', 11, 120, undefined],
    ]);
    expect(() => parseReadme('```py runnable\n```\n', 'R.md')).toThrow(/R.md:1: runnable blocks must be ts, js or sh/);
  });

  it('compares figures at the precision the README shows', () => {
    expect(compareOutput(['mean 0.981 std 2.0'], ['mean 0.98 std 2'])).toBeUndefined();
    expect(compareOutput(['mean 0.986'], ['mean 0.98'])).toMatch(/line 1: expected "mean 0.98", got "mean 0.986"/);
    expect(compareOutput(['nfe 92'], ['nfe 98'])).toMatch(/expected "nfe 98"/);
    expect(compareOutput(['err 3.2e-3'], ['err 3e-3'])).toBeUndefined();
    expect(compareOutput([], ['a'])).toMatch(/printed only 0 lines/);
  });
});

describe.skipIf(!built || examples.length === 0)(
  `README examples (${examples.length}) against the built packages${built ? '' : ' — skipped: packages are not built (npm run build)'}`,
  () => {
    let binDir: string | undefined;
    const sbmShim = (): string => {
      if (binDir) return binDir;
      binDir = mkdtempSync(join(tmpdir(), 'sbm-docs-bin-'));
      const shim = join(binDir, 'sbm');
      writeFileSync(shim, `#!/bin/sh\nexec node ${JSON.stringify(join(root, 'apps/cli/dist/cli.js'))} "$@"\n`);
      chmodSync(shim, 0o755);
      return binDir;
    };
    for (const ex of examples) {
      it(`${ex.file}:${ex.line} (${ex.lang})`, { timeout: ex.timeout * 1000 + 10_000 }, () => {
        mkdirSync(runDir, { recursive: true });
        const base = `${ex.file.replace(/[^a-z0-9]+/gi, '_')}_${ex.line}`;
        let r;
        if (ex.lang === 'sh') {
          const cwd = mkdtempSync(join(tmpdir(), 'sbm-docs-'));
          try {
            r = spawnSync('bash', ['-euo', 'pipefail', '-c', ex.code], {
              cwd,
              encoding: 'utf8',
              timeout: ex.timeout * 1000,
              // The `sbm` runs single-threaded, as in apps/cli's tests: with the default (one wasm thread per core) the
              // tiny models of these examples spend their time spinning in the thread pool while another test file
              // runs on the other core (apps/cli/README.md:50 measured 113 s). Outputs do not depend on it (the
              // figures of 1- and 2-thread wasm agree bit for bit; see apps/cli/test/helpers.ts).
              env: { ...process.env, SBM_WASM_THREADS: '1', PATH: `${sbmShim()}:${process.env.PATH}` },
            });
          } finally {
            rmSync(cwd, { recursive: true, force: true });
          }
        } else {
          const js = ex.lang === 'ts' ? transformSync(ex.code, { loader: 'ts', format: 'esm' }).code : ex.code;
          const file = join(runDir, `${base}.mjs`);
          writeFileSync(file, js);
          r = spawnSync(process.execPath, [file], { cwd: runDir, encoding: 'utf8', timeout: ex.timeout * 1000 });
        }
        const where = `${ex.file}:${ex.line}`;
        if (r.status !== 0) {
          throw new Error(
            `${where} exited ${r.status ?? r.signal}:\n${(r.stderr || '').slice(-3000)}\n${(r.stdout || '').slice(-1500)}`,
          );
        }
        if (ex.expected) {
          const printed = r.stdout.split('\n').filter((l) => l.trim() !== '');
          expect(compareOutput(printed, ex.expected), `${where}: printed\n${r.stdout}`).toBeUndefined();
        }
      });
    }
  },
);
