import { Command, Option } from 'commander';
import { getMethod, listMethods, MASK_NAMES } from '@sbm/inverse-problems';
import { listSamplers } from '@sbm/samplers';
import { UsageError } from '../errors';
import { choiceArg, oneOf } from '../registries';
import { intArg, jsonObjectArg, positiveArg } from '../util';
import { INVERSE_TASKS, type InverseTask } from './inverse-tasks';

/** What cli.ts lends the inverse-problem commands: its action wrapper, its --backend option and its example block. */
export interface CommandKit {
  run: <A extends unknown[]>(fn: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;
  backendOption: () => Option;
  examples: (lines: string[]) => string;
}

/** A finite number in [min, max] (both inclusive), or a UsageError naming the flag. */
export function rangeArg(flag: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new UsageError(`${flag}: expected a number in [${min}, ${max}], got "${v}"`);
    }
    return n;
  };
}

/** An integer in [min, max], or a UsageError naming the flag. */
export function intRangeArg(flag: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^[-+]?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new UsageError(`${flag}: expected an integer in [${min}, ${max}], got "${v}"`);
    }
    return n;
  };
}

/** "0,1,2" (repeatable) → distinct test-set indices in the order given. */
export function indicesArg(v: string, prev: number[] = []): number[] {
  const out = [...prev];
  for (const part of v.split(',')) {
    const s = part.trim();
    const n = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) {
      throw new UsageError(`--indices: expected comma-separated integers ≥ 0 (e.g. 0,1,2), got "${v}"`);
    }
    if (out.includes(n)) throw new UsageError(`--indices: index ${n} is given twice in "${v}"`);
    out.push(n);
  }
  return out;
}

/** "a.png,b.png" (repeatable) → file paths. */
export function imagesArg(v: string, prev: string[] = []): string[] {
  const files = v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (files.length === 0) throw new UsageError(`--images: expected comma-separated PNG files, got "${v}"`);
  for (const f of files) {
    if (!f.toLowerCase().endsWith('.png')) throw new UsageError(`--images: expected .png files, got "${f}"`);
  }
  return [...prev, ...files];
}

const TASK_EXAMPLES: Record<InverseTask, string[]> = {
  inpaint: [
    'sbm inpaint --ckpt runs/mnist --n 8 --mask center-box --steps 200 --out inpaint.png --json inpaint.json',
    'sbm inpaint --ckpt runs/mnist --indices 0,1,2 --mask random --ratio 0.3 --method repaint --out repaint.png',
    'sbm inpaint --ckpt runs/mnist --images digit.png --mask mask.png --samples-per-input 4 --out mine.png',
  ],
  colorize: [
    'sbm colorize --ckpt runs/colored --n 8 --steps 200 --out colorize.png --json colorize.json',
    'sbm colorize --ckpt runs/colored --images a.png,b.png --samples-per-input 3 --out colorize.png',
    'sbm colorize --ckpt runs/colored --n 8 --samples-per-input 8 --posterior-mean --out colorize-mean.png',
  ],
  superres: [
    'sbm superres --ckpt runs/mnist --n 8 --factor 4 --steps 200 --out sr.png --json sr.json',
    'sbm superres --ckpt runs/mnist --n 8 --factor 2 --method dps --zeta 0.5 --noise-std 0.05 --out sr-dps.png',
  ],
  cs: ['sbm cs --ckpt runs/mnist --n 8 --ratio 0.25 --lambda 0.9 --steps 200 --out cs.png --json cs.json'],
  ct: ['sbm ct --ckpt runs/mnist --n 8 --views 23 --snr 0.246 --lambda 0.841 --steps 200 --out ct.png --json ct.json'],
  mri: ['sbm mri --ckpt runs/mnist --n 8 --acceleration 4 --steps 200 --out mri.png --json mri.json'],
};

/** The sampler and method flags every conditional command shares (added in this order, for --help). */
function addSamplingOptions(c: Command, kit: CommandKit): void {
  c.addOption(
    new Option(
      '--sampler <name>',
      `sampler carrying the method (default the method's; ${oneOf(listSamplers())})`,
    ).argParser(choiceArg('--sampler', listSamplers)),
  )
    .option('--steps <n>', "sampler steps (default the sampler's)", intArg('--steps'))
    .option('--snr <x>', 'signal-to-noise ratio of the Langevin corrector (pc)', positiveArg('--snr'))
    .option('--eps <t>', "last time of the grid (default the SDE's)", positiveArg('--eps'))
    .option(
      '--denoise-to-zero',
      "end with Tweedie's denoiser E[x₀ | x_eps] instead of the last step (the samplers that have denoiseToZero)",
    )
    .option(
      '--sampler-options <json>',
      'any other options of the sampler as a JSON object (checked by the sampler)',
      jsonObjectArg('--sampler-options'),
    )
    .option('--seed <n>', 'seed of the sampler (and of the measurement noise)', intArg('--seed', 0), 0)
    .option('--no-ema', 'use the raw weights instead of their EMA')
    .requiredOption('--out <file.png>', 'output PNG grid')
    .option('--json [file]', 'metrics and settings as JSON: into the file, or on stdout without one')
    .addOption(kit.backendOption());
}

/** The registered methods that condition on a measurement (all but guidance; a plugin's included). */
function measurementMethods(): string[] {
  return listMethods().filter((m) => getMethod(m).needsMeasurement);
}

/** Registers sbm inpaint | colorize | superres | cs | ct | mri | guided on `program`. */
export function addInverseCommands(program: Command, kit: CommandKit): void {
  for (const task of Object.keys(INVERSE_TASKS) as InverseTask[]) {
    const spec = INVERSE_TASKS[task];
    const c = program
      .command(task)
      .description(
        `${spec.title} with an unconditional checkpoint: reconstructs test-set images (or PNGs) from ${spec.measurement}; writes a grid (rows: truth, measurement, reconstructions) and PSNR / SSIM / ‖Ax − y‖ against the classical baselines.`,
      )
      .requiredOption('--ckpt <dir>', 'run folder written by sbm train (or sbm import)')
      .option('--indices <list>', `indices into ${spec.dataSet}, comma-separated (e.g. 0,1,2)`, indicesArg)
      .option(
        '--n <n>',
        `the first n images of ${spec.dataSet} (default 4 without --indices / --images)`,
        intArg('--n'),
      )
      .option(
        '--images <files>',
        "PNG files instead of test-set images (comma-separated; converted to the model's channels and size)",
        imagesArg,
      );
    if (task === 'inpaint') {
      c.option(
        '--mask <name|file.png>',
        `known pixels: ${MASK_NAMES.join(', ')}, or a PNG (white = known)`,
        'center-box',
      ).option('--ratio <x>', '--mask random: the fraction of pixels missing (default 0.7)', rangeArg('--ratio', 0, 1));
    } else if (task === 'superres') {
      c.option(
        '--factor <k>',
        'downsampling factor (k×k average pooling; must divide the image size)',
        intArg('--factor'),
        4,
      );
    } else if (task === 'cs') {
      c.option('--ratio <x>', 'measurements per pixel m / n of the Gaussian matrix', rangeArg('--ratio', 0, 1), 0.25);
    } else if (task === 'ct') {
      c.option('--views <n>', 'projection angles of the sparse-view sinogram', intArg('--views'), 23);
    } else if (task === 'mri') {
      c.option(
        '--acceleration <x>',
        'undersampling factor of the Cartesian column mask',
        positiveArg('--acceleration'),
        4,
      ).option(
        '--center-fraction <x>',
        'fraction of central k-space columns always kept',
        rangeArg('--center-fraction', 0, 1),
      );
    }
    if (spec.seeded) c.option('--operator-seed <n>', `seed of the ${spec.seeded}`, intArg('--operator-seed', 0), 0);
    c.option('--noise-std <x>', 'measurement noise σ_y (data units): y = A x + σ_y n', positiveArg('--noise-std', true))
      .addOption(
        new Option(
          '--method <name>',
          `conditional sampler (default ${spec.method}; ${oneOf(measurementMethods())})`,
        ).argParser(choiceArg('--method', measurementMethods)),
      )
      .option(
        '--lambda <x>',
        'lambda-projection: λ of the measurement-space merge (Song et al. 2022)',
        rangeArg('--lambda', 0, 1),
      )
      .option('--zeta <x>', 'dps: step size ζ of the ‖y − A x̂₀‖ gradient (Chung et al. 2023)', positiveArg('--zeta'))
      .addOption(
        new Option('--semantics <kind>', "projection: score_sde's x_mean ('reference') or the corrected one").choices([
          'reference',
          'corrected',
        ]),
      )
      .option('--jump-length <n>', 'repaint: steps per jump back', intArg('--jump-length'))
      .option('--resamplings <n>', 'repaint: resamplings per jump', intArg('--resamplings'))
      .option(
        '--samples-per-input <k>',
        'reconstructions per input (columns of the grid)',
        intArg('--samples-per-input'),
        1,
      )
      .option(
        '--posterior-mean',
        "also score the mean of each input's --samples-per-input reconstructions (the posterior-mean, MMSE " +
          'estimate; needs k ≥ 2), drawn as the last column',
      );
    addSamplingOptions(c, kit);
    c.addHelpText('after', kit.examples(TASK_EXAMPLES[task])).action(
      kit.run(async (o) => {
        const { inverseCommand } = await import('./inverse');
        return inverseCommand(task, o);
      }),
    );
  }

  const g = program
    .command('guided')
    .description(
      "Class-conditional samples by classifier guidance (score_sde's conditional PC sampler) with the shipped noise-conditional MNIST classifier; reports how often the clean classifier agrees with --label.",
    )
    .requiredOption('--ckpt <dir>', 'run folder of an MNIST checkpoint')
    .requiredOption('--label <digit>', 'class to sample (0-9)', intRangeArg('--label', 0, 9))
    .option('--scale <x>', 'guidance scale s: score + s ∇ log p_t(label | x)', positiveArg('--scale', true), 1)
    .option('--classifier <file>', 'noise-conditional classifier weights (default: the shipped one)')
    .option('--n <n>', 'number of samples', intArg('--n'), 16);
  addSamplingOptions(g, kit);
  g.addHelpText(
    'after',
    kit.examples([
      'sbm guided --ckpt runs/mnist --label 7 --n 16 --steps 200 --out sevens.png --json sevens.json',
      'sbm guided --ckpt runs/mnist --label 3 --scale 4 --sampler em --steps 500 --out threes.png',
    ]),
  ).action(
    kit.run(async (o) => {
      const { guidedCommand } = await import('./inverse');
      return guidedCommand(o);
    }),
  );
}
