import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkOptions, createRegistry, listRegistered, type RegistryEntry } from '@sbm/core';
import { UsageError } from './errors';
import { legacyNames, type Kind } from './registries';

/** A plugin module loaded by --plugin, sbm.config.(json|js) or a run folder's sbm-run.json. */
export interface LoadedPlugin {
  /** As given (package name or path). */
  spec: string;
  /** What to load it again by (sbm-run.json): the package name as given, or the absolute path of a file. */
  module: string;
  /** package.json name, or the file path when the plugin is a bare file. */
  name: string;
  version: string;
  /** "name@version": the `source` of what it registered. */
  source: string;
  /** Where it was found: --plugin, the config file's path, or the run folder. */
  from: string;
  /** What it added to the registries. */
  registered: { kind: string; name: string }[];
  /** How it registered: "register()", "default()", "registerCosineVp()", or "on import". */
  via: string;
  /** File that was imported. */
  entry: string;
}

const loaded: LoadedPlugin[] = [];

export function loadedPlugins(): readonly LoadedPlugin[] {
  return loaded;
}

/**
 * Registries that do not live in @sbm/core's store yet keep a plain list of names: what a plugin added there is
 * remembered here, so `sbm plugins` can still say where each came from.
 */
const legacySources = new Map<string, string>();
export function legacySource(kind: string, name: string): string | undefined {
  return legacySources.get(`${kind}\0${name}`);
}

const CONFIG_NAMES = ['sbm.config.json', 'sbm.config.js', 'sbm.config.mjs'];

/** Flags read before the commands are built, so plugins can add choices to --sde, --sampler, ... and their help. */
export interface EarlyFlags {
  plugins: string[];
  configFile?: string;
  ckpt?: string;
}

/** Reads --plugin (repeatable), --config-file and --ckpt from argv (either `--flag v` or `--flag=v`). */
export function scanEarlyFlags(argv: readonly string[]): EarlyFlags {
  const out: EarlyFlags = { plugins: [] };
  // `sbm bench <suite> [args...]` passes everything on to the suite.
  if (argv[0] === 'bench') return out;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (!['--plugin', '--config-file', '--ckpt'].includes(flag)) continue;
    const value = eq > 0 ? a.slice(eq + 1) : argv[i + 1];
    if (eq < 0) i += 1;
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) {
      throw new UsageError(`${flag}: expected a value, got nothing`);
    }
    if (flag === '--plugin') out.plugins.push(value);
    else if (flag === '--config-file') out.configFile = value;
    else out.ckpt = value;
  }
  return out;
}

export interface SbmConfig {
  path: string;
  plugins: string[];
}

/**
 * The project config: `--config-file PATH`, else sbm.config.json / sbm.config.js / sbm.config.mjs in `cwd`
 * (two of them is an error: which one counts would be a guess). JSON, or a module whose default export is the object.
 */
export async function readSbmConfig(cwd: string, explicit?: string): Promise<SbmConfig | undefined> {
  let path: string;
  if (explicit !== undefined) {
    path = resolve(cwd, explicit);
    if (!existsSync(path)) throw new UsageError(`--config-file: ${explicit} does not exist`);
  } else {
    const found = CONFIG_NAMES.filter((n) => existsSync(join(cwd, n)));
    if (found.length === 0) return undefined;
    if (found.length > 1) {
      throw new UsageError(`config: both ${found.join(' and ')} in ${cwd}; keep one (or pass --config-file)`);
    }
    path = join(cwd, found[0]);
  }
  const where = explicit !== undefined ? '--config-file' : 'config';
  let value: unknown;
  if (path.endsWith('.json')) {
    try {
      value = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new UsageError(`${where}: ${path} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
  } else {
    try {
      const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
      value = mod.default;
    } catch (e) {
      throw new UsageError(`${where}: ${path} failed to load: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${where}: ${path} must hold an object like { "plugins": ["@sbm/sde-cosine"] }`);
  }
  try {
    checkOptions(value as Record<string, unknown>, ['plugins'], `${where} ${path}`);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const plugins = (value as { plugins?: unknown }).plugins ?? [];
  if (!Array.isArray(plugins) || plugins.some((p) => typeof p !== 'string' || p === '')) {
    throw new UsageError(
      `${where}: ${path}: plugins: expected an array of module names, got ${JSON.stringify(plugins)}`,
    );
  }
  return { path, plugins: plugins as string[] };
}

interface PackageJson {
  name?: string;
  version?: string;
  type?: string;
  main?: string;
  module?: string;
  exports?: unknown;
}

function readPackageJson(dir: string): PackageJson | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
  } catch {
    return undefined;
  }
}

/** The file an ESM `import` of the package's `subpath` resolves to, following the exports map's conditions. */
function exportTarget(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = exportTarget(v);
      if (t) return t;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    for (const [cond, v] of Object.entries(value)) {
      if (['node', 'import', 'module', 'default'].includes(cond)) {
        const t = exportTarget(v);
        if (t) return t;
      }
    }
  }
  return undefined;
}

function packageEntry(dir: string, pkg: PackageJson, subpath: string): string | undefined {
  if (pkg.exports !== undefined) {
    const ex = pkg.exports;
    const map =
      typeof ex === 'object' && ex !== null && !Array.isArray(ex) && Object.keys(ex).some((k) => k.startsWith('.'))
        ? (ex as Record<string, unknown>)
        : { '.': ex };
    const t = exportTarget(map[subpath]);
    return t ? join(dir, t) : undefined;
  }
  if (subpath !== '.') return join(dir, subpath);
  for (const f of [pkg.module, pkg.main, 'index.js']) if (f && existsSync(join(dir, f))) return join(dir, f);
  return undefined;
}

/** Splits "@scope/pkg/sub" into the package name and "./sub". */
function splitSpecifier(spec: string): { pkg: string; subpath: string } {
  const parts = spec.split('/');
  const n = spec.startsWith('@') ? 2 : 1;
  const rest = parts.slice(n).join('/');
  return { pkg: parts.slice(0, n).join('/'), subpath: rest ? `./${rest}` : '.' };
}

/** The folder of the package that holds `file` (walking up to a package.json with a name). */
function owningPackage(file: string): { dir: string; pkg: PackageJson } | undefined {
  let dir = dirname(file);
  for (let i = 0; i < 20; i++) {
    const pkg = readPackageJson(dir);
    if (pkg?.name) return { dir, pkg };
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

interface Resolved {
  entry: string;
  name: string;
  version: string;
}

const isPathLike = (spec: string) =>
  spec.startsWith('.') || isAbsolute(spec) || spec.startsWith('file:') || /\.(m?js|cjs)$/.test(spec);

/**
 * A package name is looked up in node_modules from `base` upwards (the user's project), then from sbm's own
 * installation (plugins installed next to a global sbm); a path is taken relative to `base`.
 */
export function resolvePlugin(spec: string, bases: readonly string[], flag: string): Resolved {
  const base = bases[0];
  if (isPathLike(spec)) {
    let p = spec.startsWith('file:') ? fileURLToPath(spec) : resolve(base, spec);
    if (!existsSync(p)) throw new UsageError(`${flag}: ${spec}: no such file or folder (from ${base})`);
    if (statSync(p).isDirectory()) {
      const pkg = readPackageJson(p);
      const e = pkg ? packageEntry(p, pkg, '.') : undefined;
      if (!pkg?.name || !e) throw new UsageError(`${flag}: ${spec}: a folder without a package.json naming its entry`);
      return { entry: e, name: pkg.name, version: pkg.version ?? '0.0.0' };
    }
    p = realpathSync(p);
    const owner = owningPackage(p);
    return owner
      ? { entry: p, name: owner.pkg.name!, version: owner.pkg.version ?? '0.0.0' }
      : { entry: p, name: p, version: '0.0.0' };
  }
  const { pkg: pkgName, subpath } = splitSpecifier(spec);
  const starts = [...bases, dirname(fileURLToPath(import.meta.url))];
  for (const start of starts) {
    let dir = resolve(start);
    for (let i = 0; i < 40; i++) {
      const candidate = join(dir, 'node_modules', pkgName);
      const pkg = existsSync(candidate) ? readPackageJson(candidate) : undefined;
      if (pkg) {
        const e = packageEntry(candidate, pkg, subpath);
        if (!e || !existsSync(e)) {
          throw new UsageError(
            `${flag}: ${spec}: found ${candidate} but not its entry ${e ?? `(no export "${subpath}")`} (is it built?)`,
          );
        }
        return { entry: realpathSync(e), name: pkg.name ?? pkgName, version: pkg.version ?? '0.0.0' };
      }
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new UsageError(
    `${flag}: cannot find the package ${pkgName} from ${base} (npm install ${pkgName}, or give a path)`,
  );
}

type Snapshot = Map<string, RegistryEntry<unknown>>;
const key = (kind: string, name: string) => `${kind}\0${name}`;
function snapshot(): Snapshot {
  return new Map(listRegistered().map((e) => [key(e.kind, e.name), e]));
}
function legacySnapshot(): Map<Kind, Set<string>> {
  return new Map(Object.entries(legacyNames()).map(([k, v]) => [k as Kind, new Set(v)]));
}

/** Calls what the module says registers it; see apps/cli/README.md ("Plugins") for the rule. */
async function callRegister(mod: Record<string, unknown>): Promise<string> {
  const def = mod.default as Record<string, unknown> | ((...a: unknown[]) => unknown) | undefined;
  if (typeof mod.register === 'function') {
    await (mod.register as () => unknown)();
    return 'register()';
  }
  if (def && typeof def === 'object' && typeof def.register === 'function') {
    await (def.register as () => unknown)();
    return 'default.register()';
  }
  if (typeof def === 'function') {
    await def();
    return 'default()';
  }
  // A package like @sbm/sde-cosine exports `registerCosineVp(opts = {})`: a self-registering helper takes no
  // required argument, while re-exported registries (`registerSde(name, factory)`) take some and are left alone.
  const helpers = Object.entries(mod)
    .filter(([n, v]) => /^register[A-Z0-9_]/.test(n) && typeof v === 'function' && (v as () => void).length === 0)
    .sort(([a], [b]) => a.localeCompare(b));
  for (const [, fn] of helpers) await (fn as () => unknown)();
  return helpers.length ? helpers.map(([n]) => `${n}()`).join(', ') : 'on import';
}

/**
 * Imports a plugin, lets it register, and records its package@version as the `source` of every registry entry it
 * added without naming one. Loading the same file twice is a no-op.
 */
export async function loadPlugin(
  spec: string,
  bases: readonly string[],
  from: string,
  flag = '--plugin',
): Promise<LoadedPlugin> {
  const r = resolvePlugin(spec, bases, flag);
  const seen = loaded.find((p) => p.entry === r.entry);
  if (seen) return seen;
  const source = `${r.name}@${r.version}`;
  // Names first: reading them registers sbm's Node backends, which must not count as the plugin's.
  const legacyBefore = legacySnapshot();
  const before = snapshot();
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(r.entry).href)) as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`${flag}: ${spec} failed to load: ${(e as Error).message.split('\n')[0]}`);
  }
  let via: string;
  try {
    via = await callRegister(mod);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const code = (e as { code?: unknown }).code;
    throw new UsageError(`${flag}: ${spec} failed to register: ${msg}${typeof code === 'string' ? ` [${code}]` : ''}`);
  }
  const registered: { kind: string; name: string }[] = [];
  for (const e of listRegistered()) {
    const k = key(e.kind, e.name);
    if (before.get(k) === e) continue;
    registered.push({ kind: e.kind, name: e.name });
    if (e.source === 'user') {
      // Same value and options, now saying who registered it.
      createRegistry(e.kind, { isValue: () => true }).register(e.name, e.value, {
        override: true,
        source,
        priority: e.priority,
        description: e.description,
        aliases: e.aliases,
      });
    }
  }
  for (const [kind, names] of Object.entries(legacyNames()) as [Kind, string[]][]) {
    for (const name of names) {
      if (legacyBefore.get(kind)?.has(name) || registered.some((x) => x.kind === kind && x.name === name)) continue;
      registered.push({ kind, name });
      legacySources.set(key(kind, name), source);
    }
  }
  const module = isPathLike(spec) ? r.entry : spec;
  const p: LoadedPlugin = {
    spec,
    module,
    name: r.name,
    version: r.version,
    source,
    from,
    registered,
    via,
    entry: r.entry,
  };
  loaded.push(p);
  return p;
}

/** Loads every plugin the config file and the early flags name, config file first. */
export async function loadPlugins(flags: EarlyFlags, cwd: string, runPlugins: string[] = [], runDir?: string) {
  const config = await readSbmConfig(cwd, flags.configFile);
  if (config) {
    for (const spec of config.plugins) await loadPlugin(spec, [dirname(config.path)], config.path, 'config plugins');
  }
  for (const spec of flags.plugins) await loadPlugin(spec, [cwd], '--plugin');
  for (const spec of runPlugins) {
    const from = join(runDir ?? cwd, 'sbm-run.json');
    await loadPlugin(spec, [runDir ?? cwd, cwd], from, `--ckpt: ${from}: plugins`);
  }
  return config;
}
