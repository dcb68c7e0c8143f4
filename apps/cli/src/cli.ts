import { readFileSync } from 'node:fs';
import { Argument, Command, CommanderError, Option } from 'commander';
import { toyNames } from '@sbm/datasets';
import { listModels } from '@sbm/models';
import { DEFAULT_SAMPLER, listCorrectors, listPredictors, listSamplers, SCHEDULES } from '@sbm/samplers';
import { listSdes } from '@sbm/sde';
import { backendChoices } from './backend';
import { describeError, EXIT_USAGE } from './errors';
import { loadPlugins, scanEarlyFlags } from './plugins';
import { choiceArg, lossNames, oneOf } from './registries';
import { readRunFile } from './run-file';
import { intArg, jsonObjectArg, positiveArg } from './util';
import { DIVERGENCE_CHOICES } from './commands/nll';
import { addInverseCommands } from './commands/inverse-commands';

function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}

// Choices are read from the registries when the commands are built, which is after the plugins loaded (main).
const backendOption = () =>
  new Option(
    '--backend <name>',
    `tfjs backend (default: SBM_BACKEND, else automatic; ${oneOf(backendChoices())})`,
  ).argParser(choiceArg('--backend', backendChoices));

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Runs a command body and records its exit code (the process exits once, in main). */
let exitCode = 0;
const run =
  <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
  async (...args: A) => {
    exitCode = await fn(...args);
  };

function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('sbm')
    .description('Score-based generative models on TensorFlow.js: train, sample, likelihoods and figures.')
    .version(cliVersion(), '-V, --version')
    .option('--verbose', 'print stack traces of errors')
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      examples([
        'sbm quickstart',
        'sbm train --data toy:moons --sde vp --model mlp --steps 2000 --out runs/moons',
        'sbm sample --ckpt runs/moons --sampler ode --out moons.png',
        'sbm nll --ckpt runs/moons --data toy:moons',
        'sbm info',
      ]),
    );

  program
    .command('quickstart')
    .description(
      'Train a 2-D MLP on the swiss roll (2000 steps, ~1-2 min), sample with PC and the ODE, plot, and report swd and NLL.',
    )
    .option('--steps <n>', 'training steps', intArg('--steps'), 2000)
    .option('--n <n>', 'samples per sampler (and reference points)', intArg('--n'), 1000)
    .option('--nll-n <n>', 'held-out points for the NLL', intArg('--nll-n'), 500)
    .option('--seed <n>', 'seed of sampling and evaluation', intArg('--seed', 0), 0)
    .option('--out <dir>', 'output folder', 'runs/quickstart')
    .addOption(backendOption())
    .addHelpText(
      'after',
      examples([
        'sbm quickstart',
        'sbm quickstart --steps 300 --out runs/qs-short',
        'SBM_BACKEND=cpu sbm quickstart --steps 100',
      ]),
    )
    .action(
      run(async (o) => {
        const { quickstart } = await import('./commands/quickstart');
        return quickstart(o);
      }),
    );

  program
    .command('train')
    .description(
      'Train a score model; checkpoints, sample previews and a loss curve go to --out. Ctrl-C, SIGTERM and SIGHUP save a checkpoint and exit 130, 143, 129.',
    )
    .requiredOption(
      '--data <spec>',
      `toy:NAME (${toyNames().join(', ')}), mnist, colored-mnist (seeded random digit and background colours), colored-mnist-class (colours set by the digit's class), folder:PATH`,
    )
    .addOption(
      new Option('--sde <name>', `SDE (${oneOf(listSdes())})`).argParser(choiceArg('--sde', listSdes)).default('vp'),
    )
    .addOption(
      new Option('--model <name>', `score network (${oneOf(listModels())})`)
        .argParser(choiceArg('--model', listModels))
        .default('mlp'),
    )
    .addOption(
      new Option('--loss <name>', `score-matching loss (default dsm; ${oneOf(lossNames())})`).argParser(
        choiceArg('--loss', lossNames),
      ),
    )
    .option('--config <file>', 'JSON { model: {...}, sde: {...}, train: { steps, lr, batchSize, warmup, emaDecay } }')
    .option('--steps <n>', 'total optimizer steps (counted from 0, also when resuming)', intArg('--steps'))
    .option('--epochs <n>', 'total epochs instead of --steps', intArg('--epochs'))
    .option('--batch <n>', 'batch size (default 512 for toy data, 128 for images)', intArg('--batch'))
    .option('--lr <x>', 'Adam learning rate (default 5e-3 toy, 2e-4 images)', positiveArg('--lr'))
    .option('--warmup <n>', 'linear lr warm-up steps (default 5% of the run, ≤ 5000)', intArg('--warmup', 0))
    .option('--ema-decay <x>', 'EMA decay (default 0.99 toy, 0.999 images)', positiveArg('--ema-decay'))
    .option('--seed <n>', 'seed of weights, batches and noise', intArg('--seed', 0), 0)
    .option('--n-data <n>', 'training set size (toy: points drawn; images: first N)', intArg('--n-data'))
    .option('--image-size <n>', 'folder data: resize to this side', intArg('--image-size'))
    .addOption(new Option('--channels <n>', 'folder data: 1 or 3').choices(['1', '3']).argParser(Number))
    .requiredOption('--out <dir>', 'run folder (checkpoint, sbm-run.json, samples/, loss.png)')
    .addOption(
      new Option('--resume', 'continue the checkpoint in --out (an error when there is none)')
        .default(false)
        .conflicts('resumeOrStart'),
    )
    .option('--resume-or-start', 'continue the checkpoint in --out, or start a new run there when there is none', false)
    .option('--ckpt-every <n>', 'checkpoint every N steps', intArg('--ckpt-every'), 1000)
    .option(
      '--sample-every <n>',
      'write a sample preview and the loss curve every N steps (default: at the end; 0: never)',
      intArg('--sample-every', 0),
    )
    .addOption(backendOption())
    .addHelpText(
      'after',
      examples([
        'sbm train --data toy:swissroll --sde vp --model mlp --steps 1000 --out runs/swiss',
        'sbm train --data toy:swissroll --sde vp --model mlp --steps 3000 --out runs/swiss --resume',
        'sbm train --data toy:checkerboard --sde subvp --steps 4000 --sample-every 1000 --out runs/checker',
        'sbm train --data mnist --sde tutorial-ve --model scorenet --epochs 5 --out runs/mnist',
        'sbm train --plugin @sbm/sde-cosine --sde cosine-vp --data toy:moons --steps 2000 --out runs/cosine',
      ]),
    )
    .action(
      run(async (o) => {
        const { trainCommand } = await import('./commands/train');
        return trainCommand(o);
      }),
    );

  program
    .command('sample')
    .description('Draw samples from a checkpoint: a scatter PNG for 2-D data, an image grid otherwise.')
    .requiredOption('--ckpt <dir>', 'run folder written by sbm train')
    .addOption(
      new Option('--sampler <name>', `sampler (${oneOf(listSamplers())})`)
        .argParser(choiceArg('--sampler', listSamplers))
        .default(DEFAULT_SAMPLER),
    )
    .addOption(
      new Option(
        '--predictor <name>',
        `pc: predictor (default reverse-diffusion; ${oneOf(listPredictors())})`,
      ).argParser(choiceArg('--predictor', listPredictors)),
    )
    .addOption(
      new Option('--corrector <name>', `pc: corrector (default langevin; ${oneOf(listCorrectors())})`).argParser(
        choiceArg('--corrector', listCorrectors),
      ),
    )
    .option(
      '--sigma <x>',
      "langevin: the noise level it samples (default the SDE's smallest, σ(eps))",
      positiveArg('--sigma'),
    )
    .option('--steps <n>', 'steps (ald: steps per level)', intArg('--steps'))
    .option('--snr <x>', 'signal-to-noise ratio of the Langevin corrector / langevin sampler', positiveArg('--snr'))
    .option('--n <n>', 'number of samples (default 1000 for 2-D, 64 images)', intArg('--n'))
    .option(
      '--eps <t>',
      "last time of the grid (default the SDE's: 1e-3 VP and tutorial VE, 1e-5 VE)",
      positiveArg('--eps'),
    )
    .option(
      '--denoise-to-zero',
      "end with Tweedie's denoiser E[x0 | x_eps] instead of the last step (samplers with a denoiseToZero option)",
      false,
    )
    .addOption(
      new Option(
        '--schedule <name>',
        `fixed-grid solvers: where the steps lie (${oneOf([...SCHEDULES])}; default the sampler's)`,
      ).argParser(choiceArg('--schedule', () => [...SCHEDULES])),
    )
    .option(
      '--sampler-options <json>',
      'any other options of the sampler as a JSON object, e.g. \'{"order":3}\' (checked by the sampler)',
      jsonObjectArg('--sampler-options'),
    )
    .option('--seed <n>', 'sampling seed', intArg('--seed', 0), 0)
    .option('--no-ema', 'use the raw weights instead of their EMA')
    .requiredOption('--out <file.png>', 'output PNG')
    .option('--score-field <file.png>', '2-D only: also plot the learned score as arrows')
    .option('--json', 'print a JSON summary on stdout', false)
    .addOption(backendOption())
    .addHelpText(
      'after',
      examples([
        'sbm sample --ckpt runs/swiss --sampler pc --out swiss-pc.png',
        'sbm sample --ckpt runs/swiss --sampler ode --n 2000 --score-field field.png --out swiss-ode.png',
        'sbm sample --ckpt runs/mnist --sampler dpm-solver --steps 20 --n 64 --out digits.png --json',
        'sbm sample --ckpt runs/mnist --sampler pc --steps 100 --eps 0.03 --denoise-to-zero --out digits-pc.png',
        'sbm sample --ckpt runs/swiss --sampler pc --predictor euler-maruyama --corrector none --out swiss-em.png',
      ]),
    )
    .action(
      run(async (o, cmd) => {
        // --predictor / --corrector are PC's parts: without an explicit --sampler they select pc.
        if (cmd.getOptionValueSource('sampler') === 'default' && (o.predictor || o.corrector)) o.sampler = 'pc';
        const { sampleCommand } = await import('./commands/sample');
        return sampleCommand(o);
      }),
    );

  program
    .command('nll')
    .description(
      'Negative log-likelihood through the probability-flow ODE: nats per sample (2-D) or bits/dim (images).',
    )
    .requiredOption('--ckpt <dir>', 'run folder written by sbm train')
    .option('--data <spec>', 'mnist:test, toy:NAME, folder:PATH (default: the data the run trained on)')
    .option('--n <n>', 'number of held-out samples (default 1000 toy, 100 images)', intArg('--n'))
    .addOption(
      new Option('--divergence <kind>', 'trace estimator (default exact for D ≤ 16)').choices(DIVERGENCE_CHOICES),
    )
    .option('--batch <n>', 'samples per ODE solve', intArg('--batch'))
    .option('--rtol <x>', 'relative tolerance of the RK45 solve (default 1e-5, as score_sde)', positiveArg('--rtol'))
    .option('--atol <x>', 'absolute tolerance of the RK45 solve (default 1e-5)', positiveArg('--atol'))
    .option('--seed <n>', 'seed of probes and dequantization', intArg('--seed', 0), 0)
    .option('--no-ema', 'use the raw weights instead of their EMA')
    .option('--json', 'print a JSON summary on stdout', false)
    .addOption(backendOption())
    .addHelpText(
      'after',
      examples([
        'sbm nll --ckpt runs/swiss --data toy:swissroll --n 500',
        'sbm nll --ckpt runs/mnist --data mnist:test --n 200 --json',
        'sbm nll --ckpt runs/mnist --n 50 --rtol 1e-3 --atol 1e-3   # faster, looser',
      ]),
    )
    .action(
      run(async (o) => {
        const { nllCommand } = await import('./commands/nll');
        return nllCommand(o);
      }),
    );

  const weightsOption = (what: string) => new Option('--weights <set>', what).choices(['ema', 'model']).default('ema');
  program
    .command('import')
    .description(
      'Import a score_sde_pytorch checkpoint (.pth, or a safetensors state dict) and its config.json as an sbm checkpoint that sample and nll take.',
    )
    .addArgument(new Argument('<format>', 'checkpoint format').choices(['score-sde']))
    .requiredOption('--checkpoint <file>', "the reference's checkpoint_N.pth (utils.save_checkpoint), or a state dict")
    .requiredOption('--config <file>', "the reference config as JSON (ml_collections' config.to_json())")
    .requiredOption('--out <dir>', 'checkpoint folder to write')
    .addOption(weightsOption("weights sample / nll use by default: the reference's EMA, or the raw ones"))
    .option('--force', 'replace a checkpoint already in --out', false)
    .addOption(backendOption())
    .addHelpText(
      'after',
      examples([
        'sbm import score-sde --checkpoint checkpoint_26.pth --config config.json --out runs/cifar',
        'sbm sample --ckpt runs/cifar --sampler pc --n 16 --out cifar.png',
      ]),
    )
    .action(
      run(async (format: string, o) => {
        const { importCommand } = await import('./commands/import');
        return importCommand(format, o);
      }),
    );

  program
    .command('export')
    .description(
      "Write a checkpoint's weights as safetensors: score-sde under score_sde_pytorch's state-dict names; " +
        'safetensors as one sbm model file (sbm names, model / SDE config, data range, step: what the demo loads).',
    )
    .addArgument(new Argument('<format>', 'weights format').choices(['score-sde', 'safetensors']))
    .requiredOption('--ckpt <dir>', 'checkpoint folder (sbm train / sbm import score-sde --out)')
    .requiredOption('--out <file.safetensors>', 'output file')
    .addOption(weightsOption('which weights: the EMA, or the raw ones'))
    .addOption(
      new Option('--dtype <dtype>', 'safetensors only: storage of the trainable weights').choices([
        'float32',
        'float16',
      ]),
    )
    .option('--force', 'replace an existing --out file', false)
    .addOption(backendOption())
    .addHelpText(
      'after',
      examples([
        'sbm export score-sde --ckpt runs/cifar --out weights.safetensors',
        'sbm export safetensors --ckpt runs/mnist --out mnist-f16.safetensors --dtype float16',
      ]),
    )
    .action(
      run(async (format: string, o) => {
        const { exportCommand } = await import('./commands/export');
        return exportCommand(format, o);
      }),
    );

  program
    .command('info')
    .description('Available backends, which one is chosen and why, and versions.')
    .option('--json', 'print JSON', false)
    .addOption(backendOption())
    .addHelpText('after', examples(['sbm info', 'SBM_BACKEND=cpu sbm info --json']))
    .action(
      run(async (o) => {
        const { infoCommand } = await import('./commands/info');
        return infoCommand({ ...o, cliVersion: cliVersion() });
      }),
    );

  program
    .command('plugins')
    .description(
      'What is registered (backends, SDEs, models, losses, samplers, predictors, correctors, toy data), from which package, and the plugins loaded.',
    )
    .option('--json', 'print JSON', false)
    .addHelpText('after', examples(['sbm plugins', 'sbm plugins --plugin @sbm/sde-cosine', 'sbm plugins --json']))
    .action(
      run(async (o) => {
        const { pluginsCommand } = await import('./commands/plugins');
        return pluginsCommand(o);
      }),
    );

  program
    .command('bench')
    .description('Run a benchmark suite of the sbm repository (tools/bench/bin/bench.mjs; one JSON object per line).')
    .argument('<suite>', 'kernels, likelihood, samplers, train, …')
    .argument('[args...]', 'passed on to the suite')
    .allowUnknownOption(true)
    .addHelpText('after', examples(['sbm bench samplers', 'sbm bench train']))
    .action(
      run(async (suite: string, rest: string[]) => {
        const { benchCommand } = await import('./commands/bench');
        return benchCommand(suite, rest);
      }),
    );

  // Issue 14: inpaint, colorize, superres, cs, ct, mri and guided (one file builds them all).
  addInverseCommands(program, { run, backendOption, examples });

  program.exitOverride();
  program.configureOutput({ outputError: () => undefined });
  for (const c of program.commands) {
    c.exitOverride();
    c.configureOutput({ outputError: () => undefined });
    c.showSuggestionAfterError(true);
    if (c.name() === 'bench') continue;
    c.option('--verbose', 'print stack traces of errors');
    // Read before the commands are built (main: scanEarlyFlags); declared here for --help and so commander accepts them.
    c.option('--plugin <module>', 'load a plugin package or file first (repeatable)', collect);
    c.option('--config-file <path>', 'project config { "plugins": [...] } (default ./sbm.config.json or .js)');
  }
  return program;
}

/**
 * Plugins first: --plugin, the config file and a --ckpt run's recorded plugins register their names before the
 * commands (and their choices and help) are built from the registries.
 */
async function loadEarly(args: string[]): Promise<void> {
  const early = scanEarlyFlags(args);
  const run = early.ckpt ? await readRunFile(early.ckpt) : undefined;
  await loadPlugins(
    early,
    process.cwd(),
    (run?.plugins ?? []).map((p) => p.module),
    early.ckpt,
  );
}

async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    await loadEarly(argv.slice(2));
    await buildProgram().parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help' || e.code === 'commander.executeSubCommandAsync') return EXIT_USAGE;
      // Commander's own message ("error: unknown option '--x'\n(Did you mean --y?)") as one line.
      const msg = e.message.replace(/^error:\s*/, '').replace(/\s*\n\s*/g, ' ');
      process.stderr.write(`sbm: ${msg}\n`);
      return EXIT_USAGE;
    }
    const { code, line } = describeError(e);
    process.stderr.write(`sbm: ${line}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return code;
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`sbm: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
