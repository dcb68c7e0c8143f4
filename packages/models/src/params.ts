import * as tf from '@tensorflow/tfjs';
import { SbmError, seedStream, type SeedStream } from '@sbm/core';

/** One named weight: the live variable (do not dispose it) and whether training updates it. */
export interface NamedWeight {
  name: string;
  tensor: tf.Tensor;
  trainable: boolean;
}

/** How a parameter starts out. Every random initializer draws from the model's seed stream in creation order. */
export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  /** U(−limit, limit). */
  | { kind: 'uniform'; limit: number }
  /** N(0, std²). */
  | { kind: 'normal'; std: number };

/**
 * PyTorch's default for nn.Linear / nn.Conv2d weights and biases: kaiming_uniform with a = √5 gives
 * U(±1/√fan_in) for both (torch.nn.init, "Linear.reset_parameters"). The tutorial ScoreNet relies on it.
 */
export function torchDefaultInit(fanIn: number): Init {
  return { kind: 'uniform', limit: 1 / Math.sqrt(fanIn) };
}

/**
 * score_sde's default_init: variance_scaling(scale, 'fan_avg', 'uniform'), i.e. U(±√(3·scale/((fan_in+fan_out)/2))).
 * A scale of 0 means 1e-10 (score_sde layers.default_init), so "zero-initialised" output convs still break symmetry.
 */
export function varianceScalingInit(scale: number, fanIn: number, fanOut: number): Init {
  const s = scale === 0 ? 1e-10 : scale;
  return { kind: 'uniform', limit: Math.sqrt((3 * s) / ((fanIn + fanOut) / 2)) };
}

/**
 * The parameters of one model: tf.Variables keyed by a stable, human-readable name ("down.0.res.1/conv0/kernel").
 * Names are the model's own (not tfjs' global variable names), so two models with the same architecture can live
 * side by side and checkpoints map one-to-one onto `getWeights()`.
 */
export class ParamStore {
  private readonly entries: { name: string; variable: tf.Variable; trainable: boolean }[] = [];
  private readonly byName = new Map<string, tf.Variable>();
  private readonly seeds: SeedStream;

  constructor(seed: number | SeedStream) {
    this.seeds = seedStream(seed);
  }

  add(name: string, shape: number[], init: Init, trainable = true): tf.Variable {
    if (this.byName.has(name)) {
      throw new SbmError('DUPLICATE_NAME', `model weight "${name}" is defined twice`, { name });
    }
    const value = tf.tidy(() => {
      switch (init.kind) {
        case 'zeros':
          return tf.zeros(shape);
        case 'ones':
          return tf.ones(shape);
        case 'uniform':
          return tf.randomUniform(shape, -init.limit, init.limit, 'float32', this.seeds.next());
        case 'normal':
          return tf.randomNormal(shape, 0, init.std, 'float32', this.seeds.next());
      }
    });
    // Unnamed: tfjs variable names are global to the engine and would clash between two copies of a model.
    const variable = tf.variable(value, trainable);
    value.dispose();
    this.entries.push({ name, variable, trainable });
    this.byName.set(name, variable);
    return variable;
  }

  get(name: string): tf.Variable {
    const v = this.byName.get(name);
    if (!v) throw new SbmError('UNKNOWN_NAME', `model weight "${name}" does not exist`, { name });
    return v;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  list(): NamedWeight[] {
    return this.entries.map((e) => ({ name: e.name, tensor: e.variable, trainable: e.trainable }));
  }

  dispose(): void {
    for (const e of this.entries) e.variable.dispose();
    this.entries.length = 0;
    this.byName.clear();
  }
}
