import { describe, expect, it } from 'vitest';
import {
  SbmError,
  SeedStream,
  brand,
  checkOptions,
  createRegistry,
  editDistance,
  hasBrand,
  isSeedStream,
  listRegistered,
  registerBackend,
  removeBackend,
  suggestName,
} from '@sbm/core';
import { expectThrowsSbm as expectSbm } from '@sbm/test-harness';

describe('suggestName', () => {
  it('finds transpositions, other libraries’ names and case/separator variants', () => {
    expect(editDistance('stpes', 'steps')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    const opts = ['steps', 'seed', 'snr', 'correctorSteps', 'eps', 'sde', 'score', 'shape'];
    expect(suggestName('stpes', opts)).toBe('steps');
    expect(suggestName('num_inference_steps', opts, { num_inference_steps: 'steps' })).toBe('steps');
    expect(suggestName('corrector_steps', opts)).toBe('correctorSteps');
    expect(suggestName('SNR', opts)).toBe('snr');
    expect(suggestName('temperature', opts)).toBeUndefined();
  });
});

describe('checkOptions', () => {
  it('rejects unknown keys with a suggestion and accepts undefined values', () => {
    expect(() => checkOptions({ steps: 3, seed: 1, extra: undefined }, ['steps', 'seed'], 'f')).not.toThrow();
    expectSbm(
      () => checkOptions({ num_inference_steps: 5 }, ['steps', 'seed'], 'sample (sampler "pc")'),
      'INVALID_ARGUMENT',
      /^sample \(sampler "pc"\): unknown option "num_inference_steps" \(did you mean "steps"\?\); expected some of seed, steps$/,
    );
    expectSbm(() => checkOptions(null, ['a'], 'f'), 'INVALID_ARGUMENT', /f: options: expected an object, got null/);
  });
});

describe('createRegistry', () => {
  it('registers, resolves aliases, orders by priority, refuses duplicates and suggests names', () => {
    const r = createRegistry<() => number>('widget-test');
    r.register('alpha', () => 1, { source: '@x/a@1.0.0' });
    r.register('beta', () => 2, { priority: 5, aliases: ['b2'] });
    expect(r.list()).toEqual(['beta', 'alpha']);
    expect(r.get('b2')()).toBe(2);
    expect(r.entry('alpha')?.source).toBe('@x/a@1.0.0');
    expect(r.entry('beta')?.source).toBe('user');
    expectSbm(
      () => r.register('alpha', () => 3),
      'DUPLICATE_NAME',
      /"alpha" is already registered \(from @x\/a@1\.0\.0\)/,
    );
    expectSbm(() => r.register('gamma', () => 3, { aliases: ['b2'] }), 'DUPLICATE_NAME', /"b2" is already a name of/);
    r.register('alpha', () => 3, { ifAbsent: true });
    expect(r.get('alpha')()).toBe(1);
    r.register('alpha', () => 4, { override: true });
    expect(r.get('alpha')()).toBe(4);
    expectSbm(
      () => r.get('alpah', 'widget'),
      'UNKNOWN_NAME',
      /^widget: expected one of "beta", "alpha", got "alpah" \(did you mean "alpha"\?\)$/,
    );
    expectSbm(() => r.get(7), 'UNKNOWN_NAME', /got 7$/);
    expectSbm(() => r.register('bad name', () => 1), 'INVALID_ARGUMENT', /name: expected a name/);
    expectSbm(() => r.register('x', 5 as never), 'INVALID_ARGUMENT', /expected a function, got 5/);
    expect(
      listRegistered()
        .filter((e) => e.kind === 'widget-test')
        .map((e) => e.name),
    ).toEqual(['alpha', 'beta']);
    expect(r.unregister('alpha')).toBe(true);
    expect(r.has('alpha')).toBe(false);
    r.unregister('beta');
  });

  it('shares one table between two registry objects of one kind (as the ESM and CJS copies do)', () => {
    const a = createRegistry<() => number>('shared-test');
    const b = createRegistry<() => number>('shared-test');
    a.register('one', () => 1);
    expect(b.get('one')()).toBe(1);
    expect(b.list()).toEqual(['one']);
    b.unregister('one');
    expect(a.has('one')).toBe(false);
  });

  it('backends use it: a taken name throws unless overridden', async () => {
    const f = async () => {
      throw new SbmError('BACKEND_UNAVAILABLE', 'never');
    };
    registerBackend('dup-test', f, 1);
    try {
      expectSbm(() => registerBackend('dup-test', f, 1), 'DUPLICATE_NAME', /already registered/);
      registerBackend('dup-test', f, 2, { override: true });
    } finally {
      removeBackend('dup-test');
    }
  });
});

describe('brands', () => {
  it('recognise instances across copies where instanceof cannot', () => {
    class A {}
    brand(A.prototype, 'a-test');
    class B extends A {}
    expect(hasBrand(new B(), 'a-test')).toBe(true);
    expect(hasBrand({}, 'a-test')).toBe(false);
    expect(hasBrand(null, 'a-test')).toBe(false);
    // A look-alike from "another copy": the same Symbol.for brand on an unrelated class.
    class Other {}
    brand(Other.prototype, 'seed-stream');
    expect(isSeedStream(new Other())).toBe(true);
    expect(isSeedStream(new SeedStream(1))).toBe(true);
    expect(isSeedStream(3)).toBe(false);
  });
});

describe('FiniteWatch / checkFiniteAsync', () => {
  it('reports the first non-finite tensor with one asynchronous readback and frees its flags', async () => {
    const tf = await import('@tensorflow/tfjs');
    const { FiniteWatch, checkFiniteAsync } = await import('@sbm/core');
    const before = tf.memory().numTensors;
    const a = tf.tensor([1, 2]);
    const b = tf.tensor([1, NaN]);
    const w = new FiniteWatch();
    w.add(a, 'step 1');
    expect(await w.check()).toBeUndefined();
    w.add(a, 'step 2');
    w.add(b, 'step 3');
    w.add(b, 'step 4');
    expect(w.pending).toBe(3);
    expect(await w.check()).toBe('step 3');
    expect(w.pending).toBe(0);
    w.add(b, 'x');
    w.dispose();
    await expect(checkFiniteAsync(b, 'init')).rejects.toThrow(/^init: expected finite values, got NaN or Inf$/);
    await checkFiniteAsync(a, 'init');
    a.dispose();
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('SbmError across copies', () => {
  it('instanceof and isSbmError accept an error branded by another copy of @sbm/core', async () => {
    const { isSbmError } = await import('@sbm/core');
    // What a second copy's SbmError looks like from here: another class with the same Symbol.for brand.
    const foreign = Object.assign(new Error('x'), { code: 'INVALID_ARGUMENT' });
    Object.defineProperty(foreign, Symbol.for('@sbm/brand/error'), { value: true });
    expect(foreign instanceof SbmError).toBe(true);
    expect(isSbmError(foreign, 'INVALID_ARGUMENT')).toBe(true);
    expect(new Error('plain') instanceof SbmError).toBe(false);
    expect(new SbmError('ABORTED', 'a') instanceof SbmError).toBe(true);
  });
});
