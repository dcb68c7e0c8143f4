import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildStaleDist,
  checkpointCrc,
  Child,
  errorLines,
  fineProgressEnv,
  readPointerFile,
  sbm,
  sbmAsync,
  treeHashes,
  moonsTrainArgs,
  pool,
} from './helpers';

// Issue 11: training runs from the CLI never lose work. Every case is a real child process of the built CLI.
const tmp = mkdtempSync(join(tmpdir(), 'sbm-cli-robust-'));
const run = (args: string[], timeout?: number) => sbm(args, { cwd: tmp, timeout });
const runAsync = (args: string[]) => sbmAsync(args, { cwd: tmp });
const start = (args: string[]) => new Child(args, { cwd: tmp, env: fineProgressEnv });

// A tiny 2-D run (MLP [16, 16], 1000 moons, batch 64): the reference and every interrupted copy use exactly these.
const small = join(tmp, 'small.json');
const TOTAL = 200;
const common = (out: string, steps = TOTAL) =>
  moonsTrainArgs(small, out, steps, ['--warmup', '10', '--ckpt-every', '50']);
const reference = join(tmp, 'reference');

beforeAll(() => {
  buildStaleDist();
  writeFileSync(small, JSON.stringify({ model: { hidden: [16, 16] } }));
  const r = run(common(reference));
  expect(r.code, r.stderr).toBe(0);
  expect(readPointerFile(reference)?.step).toBe(TOTAL);
}, 600_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('stop signals save a checkpoint; --resume continues bit for bit', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    it(`${signal} mid-run saves, exits ${code}; --resume ends with the uninterrupted run's weights (CRC)`, async () => {
      const out = join(tmp, `stopped-${signal}`);
      const child = start(common(out));
      expect(await child.untilStep(60), child.stderr).toBe(true);
      child.proc.kill(signal);
      const r = await child.exited;
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(new RegExp(`${signal}\\), saving a checkpoint`));
      expect(r.stderr).toMatch(/checkpoint saved in .*continue with --resume/);
      const at = readPointerFile(out)!.step;
      // Saved where it stopped, not at the last periodic checkpoint (step 50).
      expect(at).toBeGreaterThanOrEqual(60);
      expect(at).toBeLessThan(TOTAL);
      expect(existsSync(join(out, 'sbm.lock'))).toBe(false);
      const resumed = run([...common(out), '--resume']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(checkpointCrc(out)).toEqual(checkpointCrc(reference));
    }, 120_000);
  }

  it('a second signal during the save quits at once; the previous checkpoint is intact and resumes exactly', async () => {
    const out = join(tmp, 'twice');
    const child = start(common(out));
    expect(await child.untilStep(70), child.stderr).toBe(true);
    // Two different signals, so that the kernel does not merge them into one pending signal: both are handled in
    // one turn of the event loop, the first asking for a save, the second quitting before it happens.
    child.proc.kill('SIGTERM');
    child.proc.kill('SIGHUP');
    const r = await child.exited;
    // Exit code of the second one handled (Linux delivers pending signals lowest number first).
    expect([129, 143], r.stderr).toContain(r.code);
    expect(r.stderr).toMatch(/again: quitting now; the previous checkpoint is intact/);
    const at = readPointerFile(out)!.step;
    expect(at % 50).toBe(0);
    expect(at).toBeGreaterThanOrEqual(50);
    // The lock of a process that exited is released by its exit hook; no takeover needed.
    expect(existsSync(join(out, 'sbm.lock'))).toBe(false);
    const resumed = run([...common(out), '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).not.toMatch(/stale lock/);
    expect(checkpointCrc(out)).toEqual(checkpointCrc(reference));
  }, 120_000);

  it('a stop signal during start-up exits with its code too (2-thread wasm: its workers are running)', async () => {
    const out = join(tmp, 'early');
    // The other children here are single-threaded (helpers.ts); a CLI on two cores starts with wasm threads, and
    // the signal must end it as well.
    const child = new Child(common(out), { cwd: tmp, env: { ...fineProgressEnv, SBM_WASM_THREADS: '2' } });
    // The backend line comes before the data and the model are ready (no handler of train's own yet).
    expect(await child.until((s) => /^sbm: backend /m.test(s))).toBe(true);
    child.proc.kill('SIGTERM');
    const r = await child.exited;
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/^sbm: backend wasm \(2 threads, SIMD\)/m);
  }, 60_000);

  it('other commands exit 143 / 129 on SIGTERM / SIGHUP too (not a death by signal)', async () => {
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ] as const) {
      // Tight tolerances keep the ODE busy long enough to be interrupted.
      const child = new Child(['nll', '--ckpt', reference, '--n', '200', '--rtol', '1e-7', '--atol', '1e-7'], {
        cwd: tmp,
        env: fineProgressEnv,
      });
      expect(await child.until((s) => /^nll \d+%/m.test(s)), child.stderr).toBe(true);
      child.proc.kill(signal);
      const r = await child.exited;
      expect(r.signal).toBeNull();
      expect(r.code, r.stderr).toBe(code);
    }
  }, 120_000);
});

describe('a damaged checkpoint.json is refused, never taken for "no checkpoint"', () => {
  const cases: [string, string][] = [
    ['empty', ''],
    ['truncated', '{"format":"sbm-checkpoint-pointer","formatVersion":1,"slot":"sl'],
    ['not a pointer', '[1, 2, 3]'],
  ];
  for (const [what, text] of cases) {
    it(`${what}: train (with or without --resume), sample and nll exit 2 naming the corrupt file; slots untouched`, async () => {
      const out = join(tmp, `damaged-${what.replace(/ /g, '-')}`);
      cpSync(reference, out, { recursive: true });
      writeFileSync(join(out, 'checkpoint.json'), text);
      const before = treeHashes(out);
      const all = [
        common(out, 10),
        [...common(out, 300), '--resume'],
        [...common(out, 300), '--resume-or-start'],
        ['sample', '--ckpt', out, '--n', '10', '--steps', '30', '--out', join(tmp, 'never.png')],
        ['nll', '--ckpt', out, '--n', '10'],
      ];
      // Two at a time (two cores): each must refuse before writing, so they cannot disturb one another.
      const results = await pool(all.map((args) => () => runAsync(args)));
      for (const [k, args] of all.entries()) {
        const r = results[k];
        expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
        const lines = errorLines(r.stderr);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^sbm: --(out|ckpt): checkpoint .*checkpoint\.json .*\[CORRUPT_CHECKPOINT\]$/);
        expect(lines[0]).not.toMatch(/holds no checkpoint|does not exist/);
      }
      // The step-200 slots, the run file and the damaged pointer itself are byte for byte as they were.
      expect(treeHashes(out)).toEqual(before);
      expect(existsSync(join(tmp, 'never.png'))).toBe(false);
    }, 120_000);
  }

  it('a damaged sbm-run.json is reported as such by train --resume and sample', () => {
    const out = join(tmp, 'damaged-run-file');
    cpSync(reference, out, { recursive: true });
    writeFileSync(join(out, 'sbm-run.json'), '{"format": "sbm-cli-run", "data": ');
    const before = treeHashes(out);
    for (const args of [
      [...common(out, 300), '--resume'],
      ['sample', '--ckpt', out, '--n', '10', '--steps', '30', '--out', join(tmp, 'never.png')],
    ]) {
      const r = run(args);
      expect(r.code, r.stderr).toBe(2);
      expect(errorLines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/sbm-run\.json is not valid JSON .*\[CORRUPT_CHECKPOINT\]/);
    }
    expect(treeHashes(out)).toEqual(before);
  }, 60_000);
});

describe('a damaged slot: sample loads the intact one and says so', () => {
  it('sample exits 0 with one line naming the damaged slot and the step it loaded instead', () => {
    const out = join(tmp, 'damaged-slot');
    cpSync(reference, out, { recursive: true });
    const named = readPointerFile(out)!.slot;
    // The weights the pointer names no longer match their CRC: the loader must step around them, not use them.
    const dir = join(out, named, 'model');
    const bin = readdirSync(dir).find((f) => f.endsWith('.bin'))!;
    const bytes = readFileSync(join(dir, bin));
    bytes[0] ^= 0xff;
    writeFileSync(join(dir, bin), bytes);
    const r = run(['sample', '--ckpt', out, '--n', '10', '--steps', '30', '--out', join(tmp, 'fallback.png')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        `${named} \\(step ${TOTAL}, named by checkpoint\\.json\\) is damaged .*; loaded slot-[ab] \\(step \\d+\\) instead`,
      ),
    );
    expect(existsSync(join(tmp, 'fallback.png'))).toBe(true);
  }, 120_000);
});

describe('--resume needs a checkpoint; --resume-or-start asks for one or a new run', () => {
  it('--resume on a missing or checkpoint-less --out is one line naming it, exit 2, nothing created', () => {
    const missing = join(tmp, 'runs', 'mistyped');
    const a = run([...common(missing), '--resume']);
    expect(a.code).toBe(2);
    expect(errorLines(a.stderr)).toEqual([
      `sbm: --resume: ${missing} does not exist; check --out, or pass --resume-or-start to start a new run when there is none`,
    ]);
    expect(existsSync(missing)).toBe(false);
    const empty = join(tmp, 'no-ckpt');
    mkdirSync(empty);
    const b = run([...common(empty), '--resume']);
    expect(b.code).toBe(2);
    expect(errorLines(b.stderr)[0]).toMatch(/^sbm: --resume: .*no-ckpt holds no checkpoint \(no checkpoint\.json\)/);
    const both = run([...common(empty), '--resume', '--resume-or-start']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--resume.*cannot be used with.*--resume-or-start/);
  });

  it('--resume-or-start starts a new run where there is none and continues one where there is', () => {
    const out = join(tmp, 'auto');
    const a = run([...common(out, 100), '--resume-or-start']);
    expect(a.code, a.stderr).toBe(0);
    expect(readPointerFile(out)?.step).toBe(100);
    const b = run([...common(out), '--resume-or-start']);
    expect(b.code, b.stderr).toBe(0);
    expect(checkpointCrc(out)).toEqual(checkpointCrc(reference));
  }, 120_000);

  it('resuming with another --sde, --seed or --n-data is refused before anything is written', () => {
    const out = join(tmp, 'mismatch');
    cpSync(reference, out, { recursive: true });
    const before = treeHashes(out);
    const swap = (flag: string, value: string) => {
      const args = [...common(out, 300), '--resume'];
      const i = args.indexOf(flag);
      if (i >= 0) args[i + 1] = value;
      else args.push(flag, value);
      return args;
    };
    for (const [args, re] of [
      [swap('--sde', 've'), /--resume: .* was trained with --sde vp, this run asks for ve; nothing was changed/],
      [swap('--seed', '7'), /--resume: .* was trained with --seed 0, this run asks for 7/],
      [swap('--n-data', '900'), /--resume: .* was trained on 1000 samples of toy:moons, this run has 900/],
    ] as const) {
      const r = run(args);
      expect(r.code, r.stderr).toBe(2);
      expect(errorLines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
    expect(treeHashes(out)).toEqual(before);
  }, 120_000);
});

describe('two sbm train on one --out', () => {
  it('the second refuses naming the holder pid (exit 1); the first runs on unharmed and resumes', async () => {
    const out = join(tmp, 'shared');
    // No periodic checkpoint: sbm train checks --out for a checkpoint before it takes the lock, so a first run that
    // had saved one by the time the second starts (a fast machine) would get the second refused for that (exit 2).
    const args = (steps: number) => moonsTrainArgs(small, out, steps, ['--warmup', '10', '--ckpt-every', '1000000']);
    const first = start(args(100_000));
    try {
      expect(await first.untilStep(5), first.stderr).toBe(true);
      // Asynchronously: a blocked test process would stop reading the first child's progress lines.
      const second = await sbmAsync([...args(100_000), '--seed', '5'], { cwd: tmp });
      expect(second.code, second.stderr).toBe(1);
      const lines = errorLines(second.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`is locked by pid ${first.pid} on .*sbm train --out .*\\[LOCKED\\]$`));
      const step = first.step();
      expect(await first.untilStep(step + 20), first.stderr).toBe(true);
      first.proc.kill('SIGTERM');
      const r = await first.exited;
      expect(r.code, r.stderr).toBe(143);
      // The first run's seed and settings everywhere: the second wrote nothing.
      const runFile = JSON.parse(readFileSync(join(out, 'sbm-run.json'), 'utf8')) as { seed: number };
      expect(runFile.seed).toBe(0);
      const ptr = readPointerFile(out)!;
      const cfg = JSON.parse(readFileSync(join(out, ptr.slot, 'config.json'), 'utf8')) as { seed: number };
      expect(cfg.seed).toBe(0);
      expect(ptr.step).toBeGreaterThan(step);
      // Its lock went with it: the run continues from where it stopped.
      const resumed = run([...args(ptr.step + 10), '--resume']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(readPointerFile(out)?.step).toBe(ptr.step + 10);
    } finally {
      // A failed expectation must not leave the first run writing into tmp (afterAll removes it).
      if (first.proc.exitCode === null && first.proc.signalCode === null) first.proc.kill('SIGKILL');
      await first.exited;
    }
  }, 120_000);

  it('a lock left by a killed process is taken over, saying so', async () => {
    const out = join(tmp, 'stale');
    const child = start(common(out, 100_000));
    expect(await child.untilStep(55), child.stderr).toBe(true);
    child.proc.kill('SIGKILL');
    await child.exited;
    expect(existsSync(join(out, 'sbm.lock'))).toBe(true);
    const r = run([...common(out, 120), '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`took over a stale lock of pid ${child.pid}`));
    expect(existsSync(join(out, 'sbm.lock'))).toBe(false);
  }, 120_000);
});

describe('exit codes: 0 success, 1 runtime failure, 2 bad input or usage', () => {
  it('a fake .png in folder data is bad input: exit 2, one line naming the file, no run folder', () => {
    const folder = join(tmp, 'fake-pngs');
    mkdirSync(folder);
    writeFileSync(join(folder, 'a.png'), 'not a png');
    const out = join(tmp, 'fake-run');
    const r = run([
      'train',
      '--data',
      `folder:${folder}`,
      '--model',
      'scorenet',
      '--image-size',
      '8',
      '--steps',
      '2',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(2);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/a\.png: not a decodable PNG.*\[CORRUPT_DATA\]/);
    expect(existsSync(out)).toBe(false);
  });

  it('help and success exit 0; unknown names, bad values and a missing --steps exit 2', async () => {
    expect(run(['--help']).code).toBe(0);
    expect(run(['train', '--help']).code).toBe(0);
    expect(run(['sample', '--ckpt', reference, '--n', '10', '--steps', '30', '--out', join(tmp, 'ok.png')]).code).toBe(
      0,
    );
    const bad = [
      ['train', '--data', 'toy:moons', '--out', join(tmp, 'x')],
      ['train', '--data', 'toy:moons', '--steps', '5', '--sde', 'vq', '--out', join(tmp, 'x')],
      ['train', '--data', 'toy:moons', '--steps', '5', '--sample-every', '-1', '--out', join(tmp, 'x')],
      ['sample', '--ckpt', reference, '--sampler', 'magic', '--out', join(tmp, 'x.png')],
      ['sample', '--ckpt', reference, '--out', join(tmp, 'x.jpg')],
      ['nll', '--ckpt', join(tmp, 'nowhere')],
      ['bogus-command'],
    ];
    // Two at a time (two cores): all are refused before anything is written.
    const results = await pool(bad.map((args) => () => runAsync(args)));
    for (const [k, args] of bad.entries()) {
      const r = results[k];
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(errorLines(r.stderr), r.stderr).toHaveLength(1);
    }
    expect(existsSync(join(tmp, 'x'))).toBe(false);
  });

  it('the sampler grid size in the words of the flag: --steps too small for a discrete VP grid is exit 2', () => {
    const r = run([
      'sample',
      '--ckpt',
      reference,
      '--sampler',
      'pc',
      '--n',
      '10',
      '--steps',
      '5',
      '--out',
      join(tmp, 'x.png'),
    ]);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^sbm: --steps: the discrete DDPM grid needs/)]);
  });
});
