import { SbmError, describeValue } from './errors';
import { suggestName } from './suggest';

/** One registered thing: an SDE factory, a sampler, a backend, a data set, ... */
export interface RegistryEntry<T> {
  readonly kind: string;
  readonly name: string;
  readonly value: T;
  /** Who registered it, shown by `sbm plugins`: "package@version" for packages, "user" when not said. */
  readonly source: string;
  /** Higher first in `list()` (backends: the automatic selection order). */
  readonly priority: number;
  readonly description?: string;
  /** Other names that `get` accepts (k-diffusion's, diffusers'). */
  readonly aliases: readonly string[];
}

export interface RegisterOptions {
  /** Replace an entry of the same name instead of throwing DUPLICATE_NAME. */
  override?: boolean;
  /** Skip silently when the name is taken: how packages register their built-ins, so that an ESM and a CJS copy of
   * one package loaded in one process register once. */
  ifAbsent?: boolean;
  /** "package@version" of the registering package (default "user"). */
  source?: string;
  priority?: number;
  description?: string;
  aliases?: readonly string[];
}

export interface Registry<T> {
  readonly kind: string;
  register(name: string, value: T, opts?: RegisterOptions): void;
  /** The value registered under `name` (or an alias); UNKNOWN_NAME naming `argument`, the known names and the
   * closest one otherwise. */
  get(name: unknown, argument?: string): T;
  entry(name: string): RegistryEntry<T> | undefined;
  has(name: string): boolean;
  /** Canonical names, highest priority first, then in registration order. */
  list(): string[];
  entries(): RegistryEntry<T>[];
  unregister(name: string): boolean;
}

export interface RegistryOptions {
  /** What a value must be (default: a function). */
  isValue?: (v: unknown) => boolean;
  /** How `isValue` reads in an error: "a function", "an object with sample()". */
  expected?: string;
  /** `registerX` for messages (default `register` + Kind). */
  registerName?: string;
  /** The argument name `get` reports by default (default the kind). */
  argument?: string;
}

/**
 * The registries live on `globalThis` under one `Symbol.for` key, so that every copy of `@sbm/core` in a process —
 * the ESM and the CJS build of one version, or two installed versions — shares them: an SDE registered from ESM is
 * known to code loaded with `require`. Only plain data is stored there.
 */
const STORE_KEY = Symbol.for('@sbm/core/registries@1');
type Store = Map<string, Map<string, RegistryEntry<unknown>>>;
function store(): Store {
  const g = globalThis as unknown as Record<symbol, Store | undefined>;
  return (g[STORE_KEY] ??= new Map());
}
function table(kind: string): Map<string, RegistryEntry<unknown>> {
  const s = store();
  let t = s.get(kind);
  if (!t) {
    t = new Map();
    s.set(kind, t);
  }
  return t;
}

const NAME = /^[a-z0-9][a-z0-9._-]*$/i;

/**
 * A named registry of `kind` ('sde', 'sampler', 'predictor', 'backend', ...). Every registry of sbm is one of these:
 * the same rules (a name like "cosine-vp", DUPLICATE_NAME unless `{ override }`, UNKNOWN_NAME with a did-you-mean)
 * and one place (`listRegistered()`) where the apps find what plugins added.
 */
export function createRegistry<T>(kind: string, opts: RegistryOptions = {}): Registry<T> {
  const isValue = opts.isValue ?? ((v: unknown) => typeof v === 'function');
  const expected = opts.expected ?? 'a function';
  const registerName = opts.registerName ?? `register${kind[0].toUpperCase()}${kind.slice(1)}`;
  const defaultArgument = opts.argument ?? kind;
  const t = table(kind) as Map<string, RegistryEntry<T>>;

  const resolve = (name: string): RegistryEntry<T> | undefined => {
    const direct = t.get(name);
    if (direct) return direct;
    for (const e of t.values()) if (e.aliases.includes(name)) return e;
    return undefined;
  };
  const list = (): string[] =>
    [...t.values()]
      .map((e, i) => ({ e, i }))
      .sort((a, b) => b.e.priority - a.e.priority || a.i - b.i)
      .map(({ e }) => e.name);

  return {
    kind,
    register(name, value, ro = {}) {
      if (typeof name !== 'string' || !NAME.test(name)) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `${registerName}: name: expected a name of letters, digits, '.', '_' or '-' like "my-${kind}", got ${describeValue(name)}`,
          { argument: 'name', received: name },
        );
      }
      if (!isValue(value)) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `${registerName}: ${kind} "${name}": expected ${expected}, got ${describeValue(value)}`,
          { argument: 'value' },
        );
      }
      if (ro.priority !== undefined && !Number.isFinite(ro.priority)) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `${registerName}: priority: expected a finite number, got ${describeValue(ro.priority)}`,
        );
      }
      const aliases = [...(ro.aliases ?? [])];
      for (const a of aliases) {
        if (typeof a !== 'string' || !NAME.test(a)) {
          throw new SbmError('INVALID_ARGUMENT', `${registerName}: aliases: expected names, got ${describeValue(a)}`);
        }
      }
      const taken = [name, ...aliases].map((n) => ({ n, e: resolve(n) })).find(({ e }) => e && e.name !== name);
      const existing = t.get(name);
      if ((existing || taken) && ro.ifAbsent) return;
      if (taken && !ro.override) {
        throw new SbmError(
          'DUPLICATE_NAME',
          `${registerName}: "${taken.n}" is already a name of the ${kind} "${taken.e!.name}" (from ${taken.e!.source})`,
          { name: taken.n },
        );
      }
      if (existing && !ro.override) {
        throw new SbmError(
          'DUPLICATE_NAME',
          `${registerName}: a ${kind} named "${name}" is already registered (from ${existing.source}); pass { override: true } to replace it`,
          { name },
        );
      }
      if (taken) t.delete(taken.e!.name);
      t.set(name, {
        kind,
        name,
        value,
        source: ro.source ?? existing?.source ?? 'user',
        priority: ro.priority ?? 0,
        description: ro.description,
        aliases,
      });
    },
    get(name, argument = defaultArgument) {
      const e = typeof name === 'string' ? resolve(name) : undefined;
      if (e) return e.value;
      const known = list();
      const all = [...known, ...[...t.values()].flatMap((x) => x.aliases)];
      const near = typeof name === 'string' ? suggestName(name, all) : undefined;
      const canonical = near === undefined ? undefined : resolve(near)?.name;
      throw new SbmError(
        'UNKNOWN_NAME',
        `${argument}: expected one of ${known.map((k) => JSON.stringify(k)).join(', ') || `(no ${kind} registered)`}, got ${describeValue(name)}${
          canonical !== undefined ? ` (did you mean ${JSON.stringify(canonical)}?)` : ''
        }`,
        { argument, expected: known, received: name, suggestion: canonical },
      );
    },
    entry: (name) => resolve(name),
    has: (name) => resolve(name) !== undefined,
    list,
    entries: () => list().map((n) => t.get(n)!),
    unregister: (name) => t.delete(name),
  };
}

/** Every registered entry of every registry (for `sbm plugins`), grouped by kind in registration order. */
export function listRegistered(): RegistryEntry<unknown>[] {
  return [...store().values()].flatMap((t) => [...t.values()]);
}

/**
 * Brands let a class be recognised across copies of a package (`instanceof` fails when an ESM `VpSde` reaches the
 * CJS build's `sample()`). `brand(Sde.prototype, 'sde')` marks the class and its subclasses; `hasBrand(x, 'sde')` tests.
 */
export function brand(target: object, name: string): void {
  Object.defineProperty(target, Symbol.for(`@sbm/brand/${name}`), { value: true, enumerable: false });
}
export function hasBrand(value: unknown, name: string): boolean {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    (value as Record<symbol, unknown>)[Symbol.for(`@sbm/brand/${name}`)] === true
  );
}
