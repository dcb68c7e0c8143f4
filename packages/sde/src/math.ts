import * as tf from '@tensorflow/tfjs';

/** A value of a schedule expression: the implementation's own type, or a plain constant. */
export type Num<V> = V | number;

/**
 * The arithmetic a schedule is written against. A schedule `(t, M) => M.exp(M.mul(t, -theta))` is generic in the
 * value type V, so one definition runs as float64 numbers (`numberMath`), as tf tensors (`tensorMath`), and as dual
 * numbers over either (`dualMath`), which carry the exact derivative d/dt along — how `ScheduleSde` gets f = d ln α/dt
 * and g² = dσ²/dt − 2 f σ² from α and σ alone. Constants may be passed as plain numbers anywhere.
 */
export interface ScheduleMath<V> {
  add(a: Num<V>, b: Num<V>): V;
  sub(a: Num<V>, b: Num<V>): V;
  mul(a: Num<V>, b: Num<V>): V;
  div(a: Num<V>, b: Num<V>): V;
  neg(a: Num<V>): V;
  exp(a: Num<V>): V;
  /** e^a − 1, accurate for small a (σ² = 1 − α² = −expm1(2 ln α) keeps full precision near t = 0). */
  expm1(a: Num<V>): V;
  log(a: Num<V>): V;
  /** ln(1 + a), accurate for small a. */
  log1p(a: Num<V>): V;
  sqrt(a: Num<V>): V;
  square(a: Num<V>): V;
  /** a^p for a constant exponent p. */
  pow(a: Num<V>, p: number): V;
  sin(a: Num<V>): V;
  cos(a: Num<V>): V;
  tan(a: Num<V>): V;
  tanh(a: Num<V>): V;
  /** 1/(1 + e^{−a}) (log-SNR schedules: ᾱ = sigmoid(2λ)). */
  sigmoid(a: Num<V>): V;
  /** ln(1 + e^a), without overflow. */
  softplus(a: Num<V>): V;
}

const sigmoid64 = (a: number): number => (a >= 0 ? 1 / (1 + Math.exp(-a)) : Math.exp(a) / (1 + Math.exp(a)));

/** Float64 arithmetic (JavaScript numbers). */
export const numberMath: ScheduleMath<number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  neg: (a) => -a,
  exp: Math.exp,
  expm1: Math.expm1,
  log: Math.log,
  log1p: Math.log1p,
  sqrt: Math.sqrt,
  square: (a) => a * a,
  pow: Math.pow,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  tanh: Math.tanh,
  sigmoid: sigmoid64,
  softplus: (a) => Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a))),
};

// Two plain constants stay a plain number: a schedule's constant sub-expressions allocate no tensors.
const both =
  (op: (a: tf.Tensor | number, b: tf.Tensor | number) => tf.Tensor, f: (a: number, b: number) => number) =>
  (a: Num<tf.Tensor>, b: Num<tf.Tensor>): tf.Tensor =>
    (typeof a === 'number' && typeof b === 'number' ? f(a, b) : op(a, b)) as tf.Tensor;
const one =
  (op: (a: tf.Tensor) => tf.Tensor, f: (a: number) => number) =>
  (a: Num<tf.Tensor>): tf.Tensor =>
    (typeof a === 'number' ? f(a) : op(a)) as tf.Tensor;

/**
 * tf arithmetic on [B] time tensors (float32). Results of constant-only expressions may be plain numbers at run time;
 * `ScheduleSde` broadcasts what a schedule returns to the shape of t. Call inside tf.tidy.
 */
export const tensorMath: ScheduleMath<tf.Tensor> = {
  add: both(tf.add, numberMath.add),
  sub: both(tf.sub, numberMath.sub),
  mul: both(tf.mul, numberMath.mul),
  div: both(tf.div, numberMath.div),
  neg: one(tf.neg, numberMath.neg),
  exp: one(tf.exp, numberMath.exp),
  expm1: one(tf.expm1, numberMath.expm1),
  log: one(tf.log, numberMath.log),
  log1p: one(tf.log1p, numberMath.log1p),
  sqrt: one(tf.sqrt, numberMath.sqrt),
  square: one(tf.square, numberMath.square),
  pow: (a, p) => (typeof a === 'number' ? Math.pow(a, p) : tf.pow(a, p)) as tf.Tensor,
  sin: one(tf.sin, numberMath.sin),
  cos: one(tf.cos, numberMath.cos),
  tan: one(tf.tan, numberMath.tan),
  tanh: one(tf.tanh, numberMath.tanh),
  sigmoid: one(tf.sigmoid, numberMath.sigmoid),
  softplus: one(tf.softplus, numberMath.softplus),
};

/** A dual number v + d·ε (ε² = 0): a value and its derivative with respect to t. */
export interface Dual<V> {
  readonly v: Num<V>;
  readonly d: Num<V>;
}

const isDual = <V>(x: unknown): x is Dual<V> => typeof x === 'object' && x !== null && 'v' in x && 'd' in x;

/**
 * Forward-mode differentiation over any base arithmetic: evaluating a schedule on `{ v: t, d: 1 }` gives its value
 * and its exact derivative in one pass (no finite differences). Derivatives that are known zeros stay the number 0,
 * so constants cost nothing.
 */
export function dualMath<V>(B: ScheduleMath<V>): ScheduleMath<Dual<V>> {
  const lift = (x: Num<Dual<V>>): Dual<V> => (isDual<V>(x) ? x : { v: x, d: 0 });
  const add = (a: Num<V>, b: Num<V>): Num<V> => (a === 0 ? b : b === 0 ? a : B.add(a, b));
  const sub = (a: Num<V>, b: Num<V>): Num<V> => (b === 0 ? a : a === 0 ? B.neg(b) : B.sub(a, b));
  const mul = (a: Num<V>, b: Num<V>): Num<V> => (a === 0 || b === 0 ? 0 : a === 1 ? b : b === 1 ? a : B.mul(a, b));
  // d(h(a)) = h'(a)·a' (chain rule); skipped when a' = 0
  const chain = (a: Dual<V>, v: Num<V>, dh: () => Num<V>): Dual<V> => ({ v, d: a.d === 0 ? 0 : mul(dh(), a.d) });
  return {
    add: (x, y) => {
      const [a, b] = [lift(x), lift(y)];
      return { v: B.add(a.v, b.v), d: add(a.d, b.d) };
    },
    sub: (x, y) => {
      const [a, b] = [lift(x), lift(y)];
      return { v: B.sub(a.v, b.v), d: sub(a.d, b.d) };
    },
    mul: (x, y) => {
      const [a, b] = [lift(x), lift(y)];
      return { v: B.mul(a.v, b.v), d: add(mul(a.d, b.v), mul(a.v, b.d)) };
    },
    div: (x, y) => {
      const [a, b] = [lift(x), lift(y)];
      const q = B.div(a.v, b.v);
      // (a/b)' = (a' − q b')/b
      const num = sub(a.d, mul(q, b.d));
      return { v: q, d: num === 0 ? 0 : B.div(num, b.v) };
    },
    neg: (x) => {
      const a = lift(x);
      return { v: B.neg(a.v), d: a.d === 0 ? 0 : B.neg(a.d) };
    },
    exp: (x) => {
      const a = lift(x);
      const e = B.exp(a.v);
      return chain(a, e, () => e);
    },
    expm1: (x) => {
      const a = lift(x);
      return chain(a, B.expm1(a.v), () => B.exp(a.v));
    },
    log: (x) => {
      const a = lift(x);
      return { v: B.log(a.v), d: a.d === 0 ? 0 : B.div(a.d, a.v) };
    },
    log1p: (x) => {
      const a = lift(x);
      return { v: B.log1p(a.v), d: a.d === 0 ? 0 : B.div(a.d, B.add(a.v, 1)) };
    },
    sqrt: (x) => {
      const a = lift(x);
      const r = B.sqrt(a.v);
      return { v: r, d: a.d === 0 ? 0 : B.div(a.d, B.mul(r, 2)) };
    },
    square: (x) => {
      const a = lift(x);
      return chain(a, B.square(a.v), () => B.mul(a.v, 2));
    },
    pow: (x, p) => {
      const a = lift(x);
      return chain(a, B.pow(a.v, p), () => B.mul(B.pow(a.v, p - 1), p));
    },
    sin: (x) => {
      const a = lift(x);
      return chain(a, B.sin(a.v), () => B.cos(a.v));
    },
    cos: (x) => {
      const a = lift(x);
      return chain(a, B.cos(a.v), () => B.neg(B.sin(a.v)));
    },
    tan: (x) => {
      const a = lift(x);
      const v = B.tan(a.v);
      return chain(a, v, () => B.add(B.square(v), 1));
    },
    tanh: (x) => {
      const a = lift(x);
      const v = B.tanh(a.v);
      return chain(a, v, () => B.sub(1, B.square(v)));
    },
    sigmoid: (x) => {
      const a = lift(x);
      const v = B.sigmoid(a.v);
      return chain(a, v, () => B.mul(v, B.sub(1, v)));
    },
    softplus: (x) => {
      const a = lift(x);
      return chain(a, B.softplus(a.v), () => B.sigmoid(a.v));
    },
  };
}

/** Dual arithmetic over float64 and over tensors, built once. */
export const dualNumberMath = dualMath(numberMath);
export const dualTensorMath = dualMath(tensorMath);
