import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStaleDist, CLI, env, errorLines, root, sbm as run, threadedEnv, type Result } from './helpers';

// The CLI is tested as users run it: the built dist/cli.js in a child process (exit codes, stderr lines, files).
const tmp = mkdtempSync(join(tmpdir(), 'sbm-cli-test-'));

function sbm(args: string[], timeout = 60_000, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Result {
  return run(args, { cwd: opts.cwd ?? tmp, env: opts.env, timeout });
}

/** Lines Dawn and the Vulkan loader print when WebGPU is probed in-process (issue 10: they must not be). */
function nativeNoise(stderr: string): string[] {
  const re = /XDG_RUNTIME_DIR|Vulkan|vkCreateInstance|Dawn|CheckVkSuccess/i;
  return stderr.split('\n').filter((l) => !l.startsWith('sbm: ') && re.test(l));
}

function readPng(path: string) {
  const png = decode(readFileSync(path));
  return { width: png.width, height: png.height, channels: png.channels };
}

/**
 * Runs `sbm train args` (which must pass --steps) and sends SIGINT once the progress lines on stderr report a step
 * ≥ `step` (the plain, non-TTY progress lines start at step 1), like a user pressing Ctrl-C. Resolves with the exit
 * code and stderr.
 */
function trainUntilInterrupted(args: string[], step: number): Promise<{ code: number | null; stderr: string }> {
  const total = args[args.indexOf('--steps') + 1];
  const child = spawn(process.execPath, [CLI, 'train', ...args], { cwd: tmp, env });
  let stderr = '';
  return new Promise((resolve) => {
    let sent = false;
    const progress = new RegExp(`step (\\d+)/${total}`, 'g');
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      const m = [...stderr.matchAll(progress)].map((x) => Number(x[1]));
      if (!sent && m.some((s) => s >= step)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

beforeAll(() => buildStaleDist(), 600_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('sbm --help and usage errors', () => {
  for (const cmd of ['quickstart', 'train', 'sample', 'nll', 'info', 'plugins', 'bench']) {
    it(`sbm ${cmd} --help shows options and examples, exit 0`, () => {
      const r = sbm([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: sbm ${cmd}`);
      expect(r.stdout).toContain('Examples:');
      expect(r.stdout).toContain(`$ sbm ${cmd}`);
    });
  }

  it('an unknown flag is one line on stderr naming it, exit 2', () => {
    const r = sbm(['sample', '--ckpt', 'x', '--out', 'x.png', '--bogus']);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/unknown option '--bogus'/);
  });

  it('an unknown command is one line, exit 2', () => {
    const r = sbm(['smaple']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/smaple/);
  });

  it('a bad flag value (sampler, toy name, integer) is one line naming the flag, exit 2', () => {
    const a = sbm(['sample', '--ckpt', 'x', '--out', 'x.png', '--sampler', 'magic']);
    expect(a.code).toBe(2);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stderr).toMatch(/--sampler.*magic/);
    const b = sbm(['train', '--data', 'toy:donut', '--steps', '10', '--out', 'runs/x']);
    expect(b.code).toBe(2);
    expect(b.stderr.trim().split('\n')).toHaveLength(1);
    expect(b.stderr).toMatch(/--data: unknown toy data set "donut"/);
    expect(existsSync(join(tmp, 'runs', 'x'))).toBe(false);
    const c = sbm(['train', '--data', 'toy:moons', '--steps', 'ten', '--out', 'runs/x']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--steps: expected an integer/);
  });

  it('a missing checkpoint is one line, exit 2, and no output file', () => {
    const out = join(tmp, 'never.png');
    for (const args of [
      ['sample', '--ckpt', join(tmp, 'no-such-run'), '--out', out],
      ['nll', '--ckpt', join(tmp, 'no-such-run'), '--data', 'toy:moons'],
    ]) {
      const r = sbm(args);
      expect(r.code).toBe(2);
      expect(errorLines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/--ckpt: .*no-such-run does not exist/);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --verbose
    }
    expect(existsSync(out)).toBe(false);
  });
});

describe('sbm quickstart (reduced budget)', () => {
  it('writes report.json within the stated swd bound and three decodable PNGs', () => {
    const out = join(tmp, 'qs');
    const r = sbm(['quickstart', '--steps', '150', '--n', '500', '--nll-n', '50', '--out', out], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.steps).toBe(150);
    // Same seeds + backend ⇒ same numbers. Measured on 2-thread and on 1-thread wasm (the same figures) after 150
    // steps (n = 500, floor 0.095): PC 1.83×, ODE 1.49× the floor; after 1 step both are > 700× (the untrained
    // score diverges). The bound 4× is a margin for other backends changing the last bits, not a statistical
    // tolerance.
    expect(report.swdPc).toBeLessThan(4 * report.swdFloor);
    expect(report.swdOde).toBeLessThan(4 * report.swdFloor);
    expect(report.swdFloor).toBeGreaterThan(0);
    expect(Number.isFinite(report.nllNats)).toBe(true);
    expect(report.nllStdErr).toBeGreaterThan(0);
    expect(report.nfe.pc).toBe(200);
    for (const [f, w] of [
      ['samples.png', 900],
      ['score-field.png', 500],
      ['loss.png', 600],
    ] as const) {
      const png = readPng(join(out, f));
      expect(png.width).toBeGreaterThan(w);
      expect(png.height).toBeGreaterThan(300);
    }
    // Atomic writes leave no temporary files behind.
    expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(r.stdout).toContain(join(out, 'report.json'));
  }, 150_000);
});

describe('sbm train → SIGINT → resume → sample / nll', () => {
  const run = join(tmp, 'runs', 'moons');
  const common = ['--data', 'toy:moons', '--sde', 'vp', '--model', 'mlp', '--batch', '256', '--warmup', '10'];
  const pointer = () => JSON.parse(readFileSync(join(run, 'checkpoint.json'), 'utf8')) as { step: number };

  it('Ctrl-C saves a checkpoint and exits 130', async () => {
    const { code, stderr } = await trainUntilInterrupted([...common, '--steps', '1000000', '--out', run], 20);
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/checkpoint saved in/);
    expect(pointer().step).toBeGreaterThanOrEqual(20);
  }, 60_000);

  it('--resume continues from the saved step to --steps; without --resume the run is refused', () => {
    const at = pointer().step;
    const refused = sbm(['train', ...common, '--steps', String(at + 30), '--out', run]);
    expect(refused.code).toBe(2);
    expect(errorLines(refused.stderr)).toHaveLength(1);
    expect(refused.stderr).toMatch(/already holds a checkpoint.*--resume/);
    const r = sbm(['train', ...common, '--steps', String(at + 30), '--out', run, '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(pointer().step).toBe(at + 30);
    expect(readPng(join(run, 'loss.png')).width).toBeGreaterThan(0);
  }, 60_000);

  it('resuming with another batch size is a config mismatch: one line, exit 2, checkpoint untouched', () => {
    const at = pointer().step;
    const args = ['train', ...common.map((a) => (a === '256' ? '128' : a)), '--steps', String(at + 10), '--out', run];
    const r = sbm([...args, '--resume']);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/batchSize.*CONFIG_MISMATCH/);
    expect(pointer().step).toBe(at);
  }, 60_000);

  it('sample writes a scatter PNG and a score field, with a JSON summary', () => {
    const out = join(tmp, 'moons-ode.png');
    const field = join(tmp, 'moons-field.png');
    const r = sbm([
      'sample',
      '--ckpt',
      run,
      '--sampler',
      'ode',
      '--n',
      '300',
      '--out',
      out,
      '--score-field',
      field,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(s.sampler).toBe('ode');
    expect(s.n).toBe(300);
    expect(s.nfe).toBeGreaterThan(0);
    // A model trained for ≥ 50 steps lands within a few noise floors of the data; after 1 step the same command
    // measured 1437× (ode, n = 300, wasm).
    expect(s.swd).toBeLessThan(10 * s.swdFloor);
    expect(readPng(out).width).toBeGreaterThan(0);
    expect(readPng(field).width).toBeGreaterThan(0);
  }, 60_000);

  it('nll prints nats per sample with a standard error (exact trace for 2-D)', () => {
    const r = sbm(['nll', '--ckpt', run, '--n', '100', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(s.data).toBe('toy:moons');
    expect(s.divergence).toBe('exact');
    expect(s.n).toBe(100);
    expect(Number.isFinite(s.nllNats)).toBe(true);
    expect(s.nllStdErr).toBeGreaterThan(0);
    const text = sbm(['nll', '--ckpt', run, '--n', '20']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^NLL -?\d+\.\d+ ± \d+\.\d+ nats per sample on toy:moons \(n = 20, exact trace/);
  }, 60_000);
});

describe('sbm on MNIST with the tutorial ScoreNet (small budget)', () => {
  const run = join(tmp, 'runs', 'mnist');
  // 64 training images, batch 8: the full path (IDX loading, ScoreNet, previews, checkpoints) in seconds.
  const common = ['--data', 'mnist', '--sde', 'tutorial-ve', '--model', 'scorenet', '--batch', '8', '--n-data', '64'];
  const pointer = () => JSON.parse(readFileSync(join(run, 'checkpoint.json'), 'utf8')) as { step: number };

  it('train writes checkpoints, sample grids and a loss curve', () => {
    // The loss curve averages windows of 10 steps, so 20 steps give two points.
    const r = sbm(
      ['train', ...common, '--warmup', '2', '--steps', '20', '--sample-every', '10', '--out', run],
      120_000,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/scorenet \(1,115,297 parameters\) on mnist:train \(64 samples\)/);
    expect(pointer().step).toBe(20);
    const run0 = JSON.parse(readFileSync(join(run, 'sbm-run.json'), 'utf8')) as { data: string; model: string };
    expect(run0).toMatchObject({ data: 'mnist:train', model: 'scorenet' });
    for (const f of ['step-0000010.png', 'step-0000020.png']) {
      const png = readPng(join(run, 'samples', f));
      // 36 samples on a 6 × 6 grid of 28-px images with padding.
      expect(png.width).toBeGreaterThanOrEqual(6 * 28);
      expect(png.width).toBeLessThan(6 * 28 + 7 * 8);
      expect(png.height).toBe(png.width);
    }
    expect(readPng(join(run, 'loss.png')).width).toBeGreaterThan(0);
  }, 120_000);

  it('Ctrl-C saves a checkpoint and exits 130; --resume continues it', async () => {
    const at0 = pointer().step;
    const args = [...common, '--warmup', '2', '--steps', '100000', '--out', run, '--resume'];
    const { code, stderr } = await trainUntilInterrupted(args, at0 + 3);
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/checkpoint saved in/);
    const at = pointer().step;
    expect(at).toBeGreaterThanOrEqual(at0 + 3);
    const r = sbm(['train', ...common, '--warmup', '2', '--steps', String(at + 2), '--out', run, '--resume'], 120_000);
    expect(r.code, r.stderr).toBe(0);
    expect(pointer().step).toBe(at + 2);
  }, 180_000);

  it('sample writes an image grid with DPM-Solver++ and with PC (also ending with the denoiser), with JSON', () => {
    for (const [sampler, steps, nfe, extra] of [
      ['dpm-solver', '4', 4, []],
      ['pc', '3', 6, []],
      ['pc', '3', 6, ['--eps', '0.03', '--denoise-to-zero']],
    ] as const) {
      const out = join(tmp, `mnist-${sampler}.png`);
      const args = ['sample', '--ckpt', run, '--sampler', sampler, '--steps', steps, '--n', '16', '--out', out];
      const r = sbm([...args, ...extra, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout.trim());
      expect(s).toMatchObject({ sampler, n: 16, nfe, step: pointer().step, denoiseToZero: extra.length > 0 });
      const png = readPng(out);
      expect(png.width).toBeGreaterThanOrEqual(4 * 28);
      expect(png.height).toBe(png.width);
    }
  }, 120_000);

  it('nll prints test bits/dim with a standard error', () => {
    // Loose tolerances: an almost untrained network makes the ODE stiff (hundreds of NFE at 1e-3).
    const args = ['nll', '--ckpt', run, '--n', '2', '--batch', '2', '--rtol', '1e-2', '--atol', '1e-2'];
    const r = sbm([...args, '--json'], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(s).toMatchObject({ data: 'mnist:test', n: 2, divergence: 'rademacher', rtol: 1e-2, atol: 1e-2 });
    expect(s.nfe).toBeGreaterThan(0);
    // An untrained network is far from the data, but bits/dim of dequantized 8-bit images is positive and finite.
    expect(s.bpd).toBeGreaterThan(0);
    expect(s.bpd).toBeLessThan(100);
    expect(s.bpdStdErr).toBeGreaterThan(0);
  }, 120_000);
});

describe('sbm info', () => {
  it('lists the backends and the chosen one with versions', () => {
    const r = sbm(['info', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout.trim());
    expect(info.backends).toEqual(expect.arrayContaining(['wasm', 'cpu']));
    expect(info.backends).toContain(info.chosen);
    expect(info.reason).toContain(info.chosen);
    expect(info.versions['@sbm/cli']).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.versions['@tensorflow/tfjs']).toMatch(/^4\./);
    // The children here run single-threaded (helpers.ts) and say so; with SBM_WASM_THREADS=2 (what a CLI on two
    // cores starts by default) the threaded wasm backend starts.
    const one = sbm(['info', '--backend', 'wasm', '--json']);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout.trim()).reason).toMatch(/^sbm: backend wasm \(1 thread, SIMD\)/);
    const two = sbm(['info', '--backend', 'wasm', '--json'], 60_000, { env: threadedEnv });
    expect(two.code, two.stderr).toBe(0);
    expect(JSON.parse(two.stdout.trim()).reason).toMatch(/^sbm: backend wasm \(2 threads, SIMD\)/);
  });
});

describe('registries and plugins reach the CLI', () => {
  // A user's project with @sbm/sde-cosine installed: node_modules/@sbm/sde-cosine → the workspace package.
  const proj = join(tmp, 'proj');
  const cosineVersion = (
    JSON.parse(readFileSync(join(root, 'packages', 'sde-cosine', 'package.json'), 'utf8')) as { version: string }
  ).version;
  const run = join(proj, 'runs', 'cosine');
  beforeAll(() => {
    mkdirSync(join(proj, 'node_modules', '@sbm'), { recursive: true });
    symlinkSync(join(root, 'packages', 'sde-cosine'), join(proj, 'node_modules', '@sbm', 'sde-cosine'), 'dir');
  });

  it('sbm plugins lists every registry with its source package; --json for machines', () => {
    const r = sbm(['plugins', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { registered, plugins } = JSON.parse(r.stdout) as {
      registered: { kind: string; name: string; source: string }[];
      plugins: unknown[];
    };
    const src = (kind: string, name: string) => registered.find((e) => e.kind === kind && e.name === name)?.source;
    expect(src('sde', 'vp')).toMatch(/^@sbm\/sde@\d+\.\d+\.\d+/);
    expect(src('model', 'ncsnpp')).toMatch(/^@sbm\/models@/);
    expect(src('sampler', 'dpm-solver')).toMatch(/^@sbm\/samplers@/);
    expect(src('predictor', 'reverse-diffusion')).toMatch(/^@sbm\/samplers@/);
    expect(src('corrector', 'langevin')).toMatch(/^@sbm\/samplers@/);
    expect(src('backend', 'wasm')).toMatch(/^@sbm\/backend-node@/);
    expect(src('toy', 'moons')).toMatch(/^@sbm\/datasets@/);
    expect(src('loss', 'dsm')).toMatch(/^@sbm\/losses@/);
    expect(src('sde', 'cosine-vp')).toBeUndefined();
    expect(plugins).toEqual([]);
  });

  it('--plugin @sbm/sde-cosine (resolved from the cwd) adds cosine-vp, attributed to the plugin', () => {
    const r = sbm(['plugins', '--plugin', '@sbm/sde-cosine', '--json'], 60_000, { cwd: proj });
    expect(r.code, r.stderr).toBe(0);
    const { registered, plugins } = JSON.parse(r.stdout) as {
      registered: { kind: string; name: string; source: string }[];
      plugins: { name: string; version: string; registered: { kind: string; name: string }[] }[];
    };
    expect(registered.find((e) => e.kind === 'sde' && e.name === 'cosine-vp')?.source).toBe(
      `@sbm/sde-cosine@${cosineVersion}`,
    );
    // Only what the plugin added (not sbm's own backends, registered while the CLI starts).
    expect(plugins).toEqual([
      expect.objectContaining({
        name: '@sbm/sde-cosine',
        version: cosineVersion,
        registered: [{ kind: 'sde', name: 'cosine-vp' }],
      }),
    ]);
    const text = sbm(['plugins', '--plugin', '@sbm/sde-cosine'], 60_000, { cwd: proj });
    expect(text.stdout).toMatch(
      new RegExp(`^  cosine-vp +@sbm/sde-cosine@${cosineVersion.replace(/\./g, '\\.')}`, 'm'),
    );
    expect(text.stdout).toMatch(/plugins loaded:\n {2}@sbm\/sde-cosine@.* registerCosineVp\(\): sde cosine-vp/);
  });

  it('sbm.config.json in the cwd loads plugins too; help lists the registered choices', () => {
    const dir = join(tmp, 'proj-config');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'sbm.config.json'), JSON.stringify({ plugins: ['../proj/node_modules/@sbm/sde-cosine'] }));
    const r = sbm(['train', '--help'], 60_000, { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/--sde <name>\s+SDE \(one of: ve, vp, subvp, tutorial-ve, cosine-vp\)/);
    expect(r.stdout).toMatch(/--model <name>\s+score network \(one of: mlp, scorenet, ncsnpp/);
    const s = sbm(['sample', '--help']);
    expect(s.stdout).toMatch(/--predictor <name>[\s\S]*euler-maruyama/);
    expect(s.stdout).toMatch(/--corrector <name>[\s\S]*langevin/);
    writeFileSync(join(dir, 'sbm.config.json'), JSON.stringify({ plugin: ['x'] }));
    const bad = sbm(['plugins'], 60_000, { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/sbm\.config\.json.*plugin.*did you mean "plugins"/);
  });

  it('without the plugin --sde cosine-vp is one line saying how to get it; unknown plugins name the flag', () => {
    const a = sbm(['train', '--data', 'toy:moons', '--sde', 'cosine-vp', '--steps', '5', '--out', 'runs/none']);
    expect(a.code).toBe(2);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stderr).toMatch(/^sbm: --sde: expected one of ve, vp, subvp, tutorial-ve.*got "cosine-vp".*--plugin/);
    const b = sbm(['train', '--data', 'toy:moons', '--sde', 'vq', '--steps', '5', '--out', 'runs/none']);
    expect(b.stderr).toMatch(/--sde: .*got "vq" \(did you mean "ve"\?\)/);
    const c = sbm(['plugins', '--plugin', '@sbm/no-such-plugin']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/^sbm: --plugin: cannot find the package @sbm\/no-such-plugin/);
    expect(existsSync(join(tmp, 'runs', 'none'))).toBe(false);
  });

  it('sbm train --plugin @sbm/sde-cosine --sde cosine-vp trains; the run folder records the plugin', () => {
    const args = ['train', '--plugin', '@sbm/sde-cosine', '--sde', 'cosine-vp', '--data', 'toy:moons'];
    const r = sbm([...args, '--steps', '150', '--batch', '256', '--warmup', '10', '--out', run], 120_000, {
      cwd: proj,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/cosine-vp SDE, 150 steps/);
    // Automatic backend selection probed WebGPU without a word from Dawn or the Vulkan loader.
    expect(nativeNoise(r.stderr)).toEqual([]);
    const runFile = JSON.parse(readFileSync(join(run, 'sbm-run.json'), 'utf8'));
    expect(runFile).toMatchObject({
      sde: 'cosine-vp',
      plugins: [{ module: '@sbm/sde-cosine', version: cosineVersion }],
    });
    const ckpt = JSON.parse(readFileSync(join(run, 'checkpoint.json'), 'utf8')) as { step: number };
    expect(ckpt.step).toBe(150);
  }, 150_000);

  it('sbm sample --ckpt loads the recorded plugin (from another cwd) and samples near the data', () => {
    const r = sbm(['sample', '--ckpt', run, '--sampler', 'ode', '--n', '300', '--out', join(tmp, 'cos.png'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(s).toMatchObject({ sampler: 'ode', n: 300, step: 150 });
    // Trained 150 steps on moons; an untrained network gives > 100× the floor (see the vp test above).
    expect(s.swd).toBeLessThan(10 * s.swdFloor);
    expect(nativeNoise(r.stderr)).toEqual([]);
  }, 60_000);

  it('--predictor / --corrector choose the PC parts; --sampler langevin runs; errors name the flag', () => {
    const out = join(tmp, 'cos-pc.png');
    const em = sbm([
      'sample',
      '--ckpt',
      run,
      '--predictor',
      'euler-maruyama',
      '--corrector',
      'none',
      '--steps',
      '40',
      '--n',
      '100',
      '--out',
      out,
      '--json',
    ]);
    expect(em.code, em.stderr).toBe(0);
    expect(JSON.parse(em.stdout.trim())).toMatchObject({ sampler: 'pc', nfe: 40 });
    const withCorrector = sbm([
      'sample',
      '--ckpt',
      run,
      '--corrector',
      'ald',
      '--steps',
      '40',
      '--n',
      '100',
      '--out',
      out,
      '--json',
    ]);
    expect(withCorrector.code, withCorrector.stderr).toBe(0);
    expect(JSON.parse(withCorrector.stdout.trim()).nfe).toBe(80);
    const lg = sbm([
      'sample',
      '--ckpt',
      run,
      '--sampler',
      'langevin',
      '--steps',
      '30',
      '--n',
      '100',
      '--out',
      out,
      '--json',
    ]);
    expect(lg.code, lg.stderr).toBe(0);
    expect(JSON.parse(lg.stdout.trim())).toMatchObject({ sampler: 'langevin', nfe: 30 });
    const bad: [string[], RegExp][] = [
      [['--corrector', 'nne'], /^sbm: --corrector: expected one of .*got "nne" \(did you mean "none"\?\)/],
      [['--sampler', 'ode', '--predictor', 'ancestral'], /^sbm: --predictor: only for --sampler pc/],
      [['--steps', '0'], /^sbm: --steps: expected an integer ≥ 1, got "0"/],
      [['--sampler', 'langevn'], /^sbm: --sampler: .*\(did you mean "langevin"\?\)/],
      [['--backend', 'cuda'], /^sbm: --backend: expected one of auto, tensorflow, webgpu, wasm, cpu, got "cuda"/],
    ];
    for (const [args, re] of bad) {
      const r = sbm(['sample', '--ckpt', run, '--out', out, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(errorLines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  }, 120_000);

  it('sample and nll show progress with an ETA on stderr', () => {
    const s = sbm([
      'sample',
      '--ckpt',
      run,
      '--sampler',
      'pc',
      '--steps',
      '50',
      '--n',
      '100',
      '--out',
      join(tmp, 'cos-p.png'),
    ]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/^sample \(pc\) 100% {2}step 50\/50 {2}NFE 100 {2}ETA 0s$/m);
    const n = sbm(['nll', '--ckpt', run, '--n', '20']);
    expect(n.code, n.stderr).toBe(0);
    expect(n.stderr).toMatch(/^nll 100% {2}20\/20 samples {2}NFE \d+ {2}ETA 0s$/m);
    expect(n.stdout).toMatch(/^NLL -?\d+\.\d+ ± \d+\.\d+ nats per sample on toy:moons/);
  }, 60_000);

  it('automatic backend selection prints no native WebGPU warnings, also with a software Vulkan driver', () => {
    const r = sbm(['info', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(nativeNoise(r.stderr)).toEqual([]);
    const icd = '/usr/lib/chromium/vk_swiftshader_icd.json';
    if (!existsSync(icd)) return;
    const sw = sbm(['info', '--json'], 60_000, { env: { ...env, VK_ICD_FILENAMES: icd } });
    expect(sw.code, sw.stderr).toBe(0);
    expect(nativeNoise(sw.stderr)).toEqual([]);
    expect(JSON.parse(sw.stdout).reason).toMatch(/webgpu: only a software WebGPU adapter/);
  });
});
