import { listRegistered } from '@sbm/core';
import { legacySource, loadedPlugins } from '../plugins';
import { KIND_PACKAGES, legacyNames, type Kind } from '../registries';
import { versionOf } from '../util';

interface Row {
  kind: string;
  name: string;
  source: string;
  description?: string;
  aliases?: string[];
}

/**
 * Every registered name by kind with its source. @sbm/core's store says who registered what; a registry not in it
 * yet only lists names, which are then the owning package's unless a plugin added them (recorded while loading).
 */
export function registeredRows(): Row[] {
  const core = listRegistered();
  const rows: Row[] = [];
  const names = legacyNames();
  for (const kind of Object.keys(names) as Kind[]) {
    for (const name of names[kind]) {
      const e = core.find((x) => x.kind === kind && x.name === name);
      const source =
        e?.source ?? legacySource(kind, name) ?? `${KIND_PACKAGES[kind]}@${versionOf(KIND_PACKAGES[kind], '?')}`;
      rows.push({
        kind,
        name,
        source,
        ...(e?.description ? { description: e.description } : {}),
        ...(e?.aliases.length ? { aliases: [...e.aliases] } : {}),
      });
    }
  }
  // Kinds the CLI has no flag for (a plugin's own registries, measurement operators, ...).
  for (const e of core) {
    if (e.kind in names) continue;
    rows.push({
      kind: e.kind,
      name: e.name,
      source: e.source,
      ...(e.description ? { description: e.description } : {}),
      ...(e.aliases.length ? { aliases: [...e.aliases] } : {}),
    });
  }
  return rows;
}

export async function pluginsCommand(o: { json: boolean }): Promise<number> {
  const rows = registeredRows();
  const plugins = loadedPlugins().map((p) => ({
    module: p.spec,
    name: p.name,
    version: p.version,
    from: p.from,
    via: p.via,
    entry: p.entry,
    registered: p.registered,
  }));
  if (o.json) {
    process.stdout.write(JSON.stringify({ registered: rows, plugins }) + '\n');
    return 0;
  }
  const lines: string[] = [];
  const kinds = [...new Set(rows.map((r) => r.kind))];
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const kind of kinds) {
    lines.push(`${kind}:`);
    for (const r of rows.filter((x) => x.kind === kind)) {
      const aka = r.aliases?.length ? ` (also ${r.aliases.join(', ')})` : '';
      const desc = r.description ? `  ${r.description}` : '';
      lines.push(`  ${r.name.padEnd(w)}  ${r.source}${aka}${desc}`);
    }
  }
  lines.push(
    plugins.length
      ? 'plugins loaded:'
      : 'plugins loaded: none (add with --plugin <module> or { "plugins": [...] } in sbm.config.json)',
  );
  for (const p of plugins) {
    const what = p.registered.map((r) => `${r.kind} ${r.name}`).join(', ') || 'nothing new';
    lines.push(`  ${p.name}@${p.version}  from ${p.from}, ${p.via}: ${what}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
