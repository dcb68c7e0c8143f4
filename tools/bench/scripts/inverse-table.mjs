#!/usr/bin/env node
// `node tools/bench/scripts/inverse-table.mjs tools/bench/results/inverse-oracle.jsonl tools/bench/results/inverse-mnist.jsonl ...`
// Markdown tables of the inverse suite's JSON lines: the oracle (sliced W2 / floor, posterior-mean error / its exact-
// sampler scale, NFE, ms) and MNIST (PSNR / SSIM mean ± SE per task and reconstruction), then for each MNIST task
// whether its best method beats every baseline on PSNR and on SSIM (by the mean; "clearly" when by > 2 SE of both).
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (!files.length) {
  console.error('usage: node tools/bench/scripts/inverse-table.mjs <inverse-*.jsonl> ...');
  process.exit(2);
}
const recs = files.flatMap((f) =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l)),
);
const oracle = recs.filter((r) => r.part === 'oracle');
const mnist = recs.filter((r) => r.part === 'mnist');

if (oracle.length) {
  console.log('| case | method | steps | NFE | SW2 / floor | mean err / exact scale | ms |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of oracle) {
    if (r.skipped) {
      console.log(`| ${r.case} | ${r.method} | ${r.steps ?? ''} | | skipped: ${r.skipped.slice(0, 60)} | | |`);
      continue;
    }
    const me = r.meanErrFloor ? `${r.meanErr} / ${r.meanErrFloor}` : '';
    console.log(
      `| ${r.case} | ${r.method} | ${r.steps} | ${r.nfe} | ${r.ratio} (${r.swd} / ${r.swdFloor}) | ${me} | ${r.ms} |`,
    );
  }
  console.log('');
}

if (mnist.length) {
  const tasks = [...new Set(mnist.map((r) => r.task))];
  console.log('| task | reconstruction | kind | NFE | PSNR (dB) | SSIM | s |');
  console.log('|---|---|---|---:|---:|---:|---:|');
  const verdicts = [];
  for (const t of tasks) {
    const rows = mnist.filter((r) => r.task === t && r.kind !== 'png');
    for (const r of rows) {
      if (r.skipped) {
        console.log(`| ${t} | ${r.method ?? ''} | ${r.kind ?? ''} | | skipped: ${r.skipped.slice(0, 70)} | | |`);
        continue;
      }
      if (r.method === 'guidance') {
        console.log(
          `| ${t} | guidance | method | ${r.nfe} | agreement ${r.agreement} | FD ${r.fd} | ${Math.round(r.ms / 1000)} |`,
        );
        continue;
      }
      const s = r.ms === undefined ? '' : Math.round(r.ms / 1000);
      console.log(
        `| ${t} | ${r.method} | ${r.kind} | ${r.nfe} | ${r.psnr} ± ${r.psnrSe} | ${r.ssim} ± ${r.ssimSe} | ${s} |`,
      );
    }
    const base = rows.filter((r) => r.kind === 'baseline' && !r.skipped);
    const meth = rows.filter((r) => r.kind === 'method' && !r.skipped && r.psnr !== undefined);
    if (!base.length || !meth.length) continue;
    const bestOf = (xs, k) => xs.reduce((a, b) => (b[k] > a[k] ? b : a));
    const bp = bestOf(base, 'psnr');
    const bs = bestOf(base, 'ssim');
    const mp = bestOf(meth, 'psnr');
    const ms = bestOf(meth, 'ssim');
    const clearly = (m, b, k, se) => m[k] - b[k] > 2 * Math.hypot(m[se], b[se]);
    verdicts.push(
      `- ${t}: PSNR — best method ${mp.method} ${mp.psnr} vs best baseline ${bp.method} ${bp.psnr}: ${mp.psnr > bp.psnr ? (clearly(mp, bp, 'psnr', 'psnrSe') ? 'beats it (> 2 SE)' : 'above it, within 2 SE') : 'does NOT beat it'}; SSIM — ${ms.method} ${ms.ssim} vs ${bs.method} ${bs.ssim}: ${ms.ssim > bs.ssim ? (clearly(ms, bs, 'ssim', 'ssimSe') ? 'beats it (> 2 SE)' : 'above it, within 2 SE') : 'does NOT beat it'}`,
    );
  }
  console.log('');
  for (const v of verdicts) console.log(v);
}
