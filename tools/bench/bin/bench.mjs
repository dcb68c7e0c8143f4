#!/usr/bin/env node
// Benchmark runner: `npm run bench -- <suite> [suite options]`. Every suite is one file suites/<name>.mjs exporting
// `run({ args, emit, log })`; `emit(record)` prints one JSON object per line with `suite` filled in, `log` writes
// progress to stderr so stdout stays machine-readable. Adding a suite = adding one file.
import { readdirSync } from 'node:fs';

const suitesDir = new URL('../suites/', import.meta.url);
const suites = readdirSync(suitesDir)
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.slice(0, -4))
  .sort();
const [suite, ...args] = process.argv.slice(2);

if (suite === undefined || suite === '--help' || !suites.includes(suite)) {
  if (suite !== undefined && suite !== '--help') console.error(`bench: unknown suite '${suite}'`);
  console.error(`usage: npm run bench -- <suite> [options]\nsuites: ${suites.join(', ')}`);
  process.exit(suite === '--help' ? 0 : 2);
}

const mod = await import(new URL(`${suite}.mjs`, suitesDir).href);
const emit = (record) => console.log(JSON.stringify({ suite, ...record }));
const log = (...parts) => console.error(`[bench ${suite}]`, ...parts);
await mod.run({ args, emit, log });
