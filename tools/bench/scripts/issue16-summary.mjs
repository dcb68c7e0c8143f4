// Summarises repeated runs of the issue-16 benches (train --profile, train, browser-train, kernels) into Markdown:
// the median of the runs and their spread (min–max) per figure.
//   node tools/bench/scripts/issue16-summary.mjs <results dir>
// reads train-profile-*.jsonl, train-scorenet-*.jsonl, train-browser-*.jsonl and kernels-*.jsonl there.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../lib/timing.mjs';

const dir = process.argv[2] ?? 'tools/bench/results';
const files = (prefix) =>
  readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.jsonl'))
    .sort();
const lines = (f) =>
  readFileSync(join(dir, f), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
const fmt = (x, d = 1) => (x === null || x === undefined ? '–' : Number(x).toFixed(d));
const stat = (xs, d = 1) => {
  const v = xs.filter((x) => x !== null && x !== undefined);
  if (!v.length) return '–';
  if (v.length === 1) return fmt(v[0], d);
  return `${fmt(median(v), d)} (${fmt(Math.min(...v), d)}–${fmt(Math.max(...v), d)})`;
};

// Profile: per kernel, median over runs of ms/step and calls/step; top 15 by the median ms.
const prof = files('train-profile-').map(lines);
if (prof.length) {
  const byKernel = new Map();
  const totals = [];
  for (const run of prof)
    for (const r of run) {
      if (r.profile === 'total') totals.push(r);
      else if (r.profile === 'kernel') {
        const a = byKernel.get(r.kernel) ?? { ms: [], calls: [], share: [], incl: [], nested: [] };
        a.ms.push(r.ms_per_step);
        a.calls.push(r.calls_per_step);
        a.share.push(r.share);
        a.incl.push(r.inclusive_ms_per_step);
        a.nested.push(r.nested_calls_per_step);
        byKernel.set(r.kernel, a);
      }
    }
  const rows = [...byKernel.entries()].sort((x, y) => median(y[1].ms) - median(x[1].ms));
  console.log(`### Profile (${prof.length} runs; median (min–max) over runs)\n`);
  console.log('| kernel | self ms/step | calls/step | share | inclusive ms/step | nested calls/step |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [k, a] of rows.slice(0, 15))
    console.log(
      `| ${k} | ${stat(a.ms)} | ${stat(a.calls, 0)} | ${fmt(100 * median(a.share), 1)} % | ${stat(a.incl)} | ${stat(a.nested, 0)} |`,
    );
  const rest = rows.slice(15);
  if (rest.length)
    console.log(
      `| (${rest.length} others) | ${fmt(rest.reduce((s, [, a]) => s + median(a.ms), 0))} | ${fmt(
        rest.reduce((s, [, a]) => s + median(a.calls), 0),
        0,
      )} | | | |`,
    );
  console.log(
    `| **all kernels** | ${stat(totals.map((t) => t.ms_per_step))} | ${stat(
      totals.map((t) => t.calls_per_step),
      0,
    )} | | | |\n`,
  );
  console.log(
    `Wall ms/step, profiled: ${stat(totals.map((t) => t.wall_ms_per_step_profiled.median))}; unprofiled: ${stat(
      totals.map((t) => t.wall_ms_per_step.median),
    )}; kernel time / profiled wall: ${stat(
      totals.map((t) => t.kernel_share_of_wall),
      2,
    )}.\n`,
  );
}

const train = files('train-scorenet-').map(lines).flat();
if (train.length) {
  console.log(`### train scorenet (${train.length} runs; median (min–max))\n`);
  const col = (k, d = 1) =>
    stat(
      train.map((r) => r[k]),
      d,
    );
  console.log('| sbm wasm ms/step | torch 1 thr | torch 2 thr | best thr | ratio_best | ratio_2threads |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  console.log(
    `| ${col('msPerStep')} | ${col('torch1MsPerStep')} | ${col('torch2MsPerStep')} | ${train.map((r) => r.torchBestThreads).join(', ')} | ${col('ratio_best', 2)} | ${col('ratio_2threads', 2)} |\n`,
  );
}

const browser = files('train-browser-').map(lines).flat();
if (browser.length) {
  const byCfg = new Map();
  for (const r of browser) byCfg.set(r.config, [...(byCfg.get(r.config) ?? []), r]);
  console.log('### browser-train (median (min–max) over runs of each run’s median step)\n');
  console.log('| config | runs | threads | ms/step | steps/run | notes |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const [cfg, rs] of byCfg)
    console.log(
      `| ${cfg} | ${rs.length} | ${[...new Set(rs.map((r) => r.threads))].join(', ')} | ${stat(rs.map((r) => r.msPerStep))} | ${[...new Set(rs.map((r) => r.stepsMeasured))].join(', ')} | ${[...new Set(rs.map((r) => (r.timedOut ? `timed out (${r.stage})` : (r.error ?? ''))))].join('; ')} |`,
    );
  console.log('');
}

const kern = files('kernels-').map(lines);
if (kern.length) {
  const byCase = new Map();
  for (const run of kern)
    for (const r of run)
      if (r.case !== 'environment' && r.backend === 'wasm') {
        const a = byCase.get(r.case) ?? { ms: [], t1: [], t2: [], rb: [], r2: [], thr: [] };
        a.ms.push(r.ms);
        a.t1.push(r.torch1Ms);
        a.t2.push(r.torch2Ms);
        a.rb.push(r.ratio_best);
        a.r2.push(r.ratio_2threads);
        a.thr.push(r.torchBestThreads);
        byCase.set(r.case, a);
      }
  console.log(`### kernels, wasm (${kern.length} runs; median (min–max))\n`);
  console.log('| case | wasm ms | torch 1 thr | torch 2 thr | best thr | ratio_best | ratio_2threads |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [c, a] of byCase)
    console.log(
      `| ${c} | ${stat(a.ms, 2)} | ${stat(a.t1, 2)} | ${stat(a.t2, 2)} | ${a.thr.join(',')} | ${stat(a.rb, 2)} | ${stat(a.r2, 2)} |`,
    );
}
