import { describe, expect, it } from 'vitest';
import { SbmError, listRegistered } from '@sbm/core';
import {
  MlpScoreModel,
  listModels,
  modelFromConfig,
  registerModel,
  unregisterModel,
  type MlpConfig,
} from '@sbm/models';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof SbmError ? `${e.code}: ${e.message}` : `other: ${String(e)}`;
  }
  return undefined;
}

describe('model registry (core createRegistry)', () => {
  it('built-ins carry @sbm/models as their source; unknown names get a did-you-mean', () => {
    const entries = listRegistered().filter((e) => e.kind === 'model');
    expect(entries.map((e) => e.name)).toEqual(expect.arrayContaining(['mlp', 'scorenet', 'ncsnpp']));
    for (const e of entries.filter((x) => ['mlp', 'scorenet', 'ncsnpp'].includes(x.name))) {
      expect(e.source).toMatch(/^@sbm\/models@\d+\.\d+\.\d+/);
    }
    expect(code(() => modelFromConfig({ name: 'ncsnp' }))).toMatch(
      /^UNKNOWN_NAME: model.name: expected one of "mlp", .*got "ncsnp" \(did you mean "ncsnpp"\?\)/,
    );
  });

  it('re-registering throws DUPLICATE_NAME unless { override }, and keeps the source given', () => {
    const tiny = (c: unknown, s: unknown) => new MlpScoreModel({ ...(c as MlpConfig), name: 'mlp' }, s as number);
    registerModel('tiny-test', tiny, { source: 'my-models@2.0.0' });
    try {
      expect(code(() => registerModel('tiny-test', tiny))).toMatch(
        /^DUPLICATE_NAME: registerModel: .*"tiny-test".*my-models@2\.0\.0.*override/,
      );
      expect(code(() => registerModel('mlp', tiny))).toMatch(/^DUPLICATE_NAME/);
      let calls = 0;
      registerModel(
        'tiny-test',
        (c, s) => {
          calls += 1;
          return tiny(c, s);
        },
        { override: true },
      );
      const m = modelFromConfig({ name: 'tiny-test', inputDim: 2, hidden: [4] });
      m.dispose();
      expect(calls).toBe(1);
      expect(listModels()).toContain('tiny-test');
      expect(listRegistered().find((e) => e.kind === 'model' && e.name === 'tiny-test')?.source).toBe(
        'my-models@2.0.0',
      );
      expect(code(() => registerModel('bad name', tiny))).toMatch(/^INVALID_ARGUMENT: registerModel: name:/);
    } finally {
      unregisterModel('tiny-test');
    }
    expect(listModels()).not.toContain('tiny-test');
  });
});
