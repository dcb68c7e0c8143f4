#!/usr/bin/env node
// Turns the frontier's JSON lines (`npm run bench -- samplers`, kind "frontier" / "frontier-order") into the
// markdown tables and the SVG plot for BENCHMARKS.md:
//   node tools/bench/scripts/frontier-table.mjs frontier.jsonl [more.jsonl …] [--md out.md] [--svg out.svg]
//     [--budget 20]
// Reads stdin when no file is given; other lines (quality, other suites, non-JSON) are ignored. Markdown goes to
// stdout unless --md names a file. The plot: one log-log panel of max error against NFE per (mixture, SDE), one
// line per solver (at its best schedule at the --budget NFE, default 20). Plain SVG text, no dependencies.
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const files = [];
const flags = {};
for (let i = 0; i < args.length; i++) {
  if (args[i].startsWith('--')) flags[args[i].slice(2)] = args[++i];
  else files.push(args[i]);
}
const BUDGET = Number(flags.budget ?? 20);
const text = files.length ? files.map((f) => readFileSync(f, 'utf8')).join('\n') : readFileSync(0, 'utf8');
const lines = [];
for (const l of text.split('\n')) {
  const s = l.trim();
  if (!s.startsWith('{')) continue;
  try {
    const r = JSON.parse(s);
    if (r.kind === 'frontier' || r.kind === 'frontier-order') lines.push(r);
  } catch {
    // not a JSON line
  }
}

const MIX_NAMES = { gaussian: 'gaussian2d', '2d': 'mixture2d', '16d': 'mixture16d' };
const SDE_NAMES = { vp: 'VP', ve: 'VE', subvp: 'sub-VP', 'tutorial-ve': 'tutorial VE' };
const mixOrder = ['gaussian', '2d', '16d'];
const probKey = (r) => `${r.mixture}|${r.sde}`;
const probTitle = (k) => {
  const [m, s] = k.split('|');
  return `${MIX_NAMES[m] ?? m} · ${SDE_NAMES[s] ?? s}`;
};
const fmt = (x) => (x === undefined || x === null ? '' : !Number.isFinite(x) ? String(x) : x.toExponential(1));
const uniq = (xs) => [...new Set(xs)];

const det = lines.filter((r) => r.kind === 'frontier' && !r.stochastic && r.error === undefined);
const sto = lines.filter((r) => r.kind === 'frontier' && r.stochastic && r.error === undefined);
const errs = lines.filter((r) => r.kind === 'frontier' && r.error !== undefined);
const orders = lines.filter((r) => r.kind === 'frontier-order');
const problems = uniq(lines.filter((r) => r.kind === 'frontier').map(probKey)).sort((a, b) => {
  const [ma, sa] = a.split('|');
  const [mb, sb] = b.split('|');
  return mixOrder.indexOf(ma) - mixOrder.indexOf(mb) || sb.localeCompare(sa);
});

/** Per problem and solver: the schedule with the smallest max error at the budget (else at the largest NFE). */
function bestSchedules(rows, value) {
  const best = new Map();
  const groups = new Map();
  for (const r of rows) {
    const k = `${probKey(r)}|${r.solver}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(r);
  }
  for (const [k, rs] of groups) {
    const at = rs.filter((r) => r.nfeBudget === BUDGET);
    const pool = at.length ? at : rs;
    const pick = pool.reduce((a, b) => (value(a) <= value(b) ? a : b));
    best.set(k, pick.schedule);
  }
  return best;
}

const out = [];
const budgets = uniq(
  det
    .concat(sto)
    .map((r) => r.nfeBudget)
    .filter((b) => b !== undefined),
).sort((a, b) => a - b);
const detBest = bestSchedules(det, (r) => r.max);
out.push(`Max error against the exact probability-flow map at the solver's end time (mean in parentheses), from`);
out.push(
  `${uniq(det.map((r) => r.points)).join('/')} fixed prior draws; each solver at its best schedule at ${BUDGET} NFE.`,
);
out.push(`A budget the solver cannot hit exactly shows the NFE it used in brackets. Order: least-squares slope of`);
out.push(`−log max error against log NFE (errors above 1e-5).`);
out.push('');
for (const p of problems) {
  const rows = det.filter((r) => probKey(r) === p);
  if (!rows.length) continue;
  out.push(`#### ${probTitle(p)}`);
  out.push('');
  out.push(`| solver | schedule | order | ${budgets.map((b) => `${b}`).join(' | ')} |`);
  out.push(`|---|---|---|${budgets.map(() => '---').join('|')}|`);
  for (const solver of uniq(rows.map((r) => r.solver))) {
    const schedule = detBest.get(`${p}|${solver}`);
    const rs = rows.filter((r) => r.solver === solver && r.schedule === schedule);
    const ord = orders.find((o) => probKey(o) === p && o.solver === solver && o.schedule === schedule);
    if (rs.some((r) => r.rtol !== undefined)) {
      const sweep = rs
        .sort((a, b) => a.nfe - b.nfe)
        .map((r) => `${fmt(r.max)} @${r.nfe} (rtol ${r.rtol})`)
        .join(', ');
      out.push(
        `| ${solver} | ${schedule} | ${ord ? ord.order.toFixed(2) : ''} | ${sweep}${budgets.length > 1 ? ' |'.repeat(budgets.length - 1) : ''} |`,
      );
      continue;
    }
    const cells = budgets.map((b) => {
      const r = rs.find((x) => x.nfeBudget === b);
      if (!r) return '';
      return `${fmt(r.max)} (${fmt(r.mean)})${r.nfe !== b ? ` [${r.nfe}]` : ''}`;
    });
    out.push(`| ${solver} | ${schedule} | ${ord ? ord.order.toFixed(2) : ''} | ${cells.join(' | ')} |`);
  }
  out.push('');
  // Every schedule at the budget.
  const at = rows.filter((r) => r.nfeBudget === BUDGET);
  const scheds = uniq(at.map((r) => r.schedule));
  if (scheds.length > 1) {
    out.push(`Max error at ${BUDGET} NFE by schedule:`);
    out.push('');
    out.push(`| solver | ${scheds.join(' | ')} |`);
    out.push(`|---|${scheds.map(() => '---').join('|')}|`);
    for (const solver of uniq(at.map((r) => r.solver))) {
      const cells = scheds.map((s) => {
        const r = at.find((x) => x.solver === solver && x.schedule === s);
        return r ? fmt(r.max) : '';
      });
      out.push(`| ${solver} | ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  const within = rows.filter((r) => r.nfe <= BUDGET);
  if (within.length) {
    const b = within.reduce((x, y) => (x.max <= y.max ? x : y));
    out.push(
      `Best at ≤ ${BUDGET} NFE: **${b.solver}** (${b.schedule}, ${b.nfe} NFE): max ${fmt(b.max)}, mean ${fmt(b.mean)}.`,
    );
    out.push('');
  }
}

if (sto.length) {
  const stoBest = bestSchedules(sto, (r) => r.ratio);
  out.push(
    `Stochastic samplers: sliced W2 to exact draws over its floor (1 = indistinguishable at n), best schedule at ${BUDGET} NFE.`,
  );
  out.push('');
  for (const p of problems) {
    const rows = sto.filter((r) => probKey(r) === p);
    if (!rows.length) continue;
    out.push(`#### ${probTitle(p)} (n = ${uniq(rows.map((r) => r.n)).join('/')})`);
    out.push('');
    out.push(`| sampler | schedule | ${budgets.join(' | ')} |`);
    out.push(`|---|---|${budgets.map(() => '---').join('|')}|`);
    for (const solver of uniq(rows.map((r) => r.solver))) {
      const schedule = stoBest.get(`${p}|${solver}`);
      const cells = budgets.map((b) => {
        const r = rows.find((x) => x.solver === solver && x.schedule === schedule && x.nfeBudget === b);
        return r ? `${r.ratio.toFixed(2)}${r.nfe !== b ? ` [${r.nfe}]` : ''}` : '';
      });
      out.push(`| ${solver} | ${schedule} | ${cells.join(' | ')} |`);
    }
    out.push('');
  }
}

if (errs.length) {
  const by = new Map();
  for (const e of errs) {
    const k = `${e.solver}: ${e.error}`;
    by.set(k, (by.get(k) ?? 0) + 1);
  }
  out.push('Lines that failed:');
  out.push('');
  for (const [k, n] of by) out.push(`- ${k} (${n} lines)`);
  out.push('');
}

const md = out.join('\n');
if (flags.md) writeFileSync(flags.md, md);
else process.stdout.write(md);

if (flags.svg) writeFileSync(flags.svg, plot());

/** Log-log panels of max error against NFE; one polyline per solver (best schedule at the budget). */
function plot() {
  const mixes = mixOrder.filter((m) => det.some((r) => r.mixture === m));
  const sdes = uniq(det.map((r) => r.sde))
    .sort()
    .reverse();
  const solvers = uniq(det.map((r) => r.solver));
  const palette = [
    '#1f77b4',
    '#ff7f0e',
    '#2ca02c',
    '#d62728',
    '#9467bd',
    '#8c564b',
    '#e377c2',
    '#7f7f7f',
    '#bcbd22',
    '#17becf',
    '#393b79',
    '#637939',
    '#8c6d31',
    '#843c39',
  ];
  const dash = ['', '6 3', '2 2'];
  const W = 340;
  const H = 250;
  const pad = { l: 56, r: 12, t: 26, b: 36 };
  const legendW = 190;
  const width = sdes.length * W + legendW;
  const height = mixes.length * H + 10;
  const nfes = det.map((r) => r.nfe).filter((n) => n > 0);
  const errsAll = det.map((r) => r.max).filter((e) => e > 0 && Number.isFinite(e));
  if (!nfes.length || !errsAll.length) return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>';
  const x0 = Math.log10(Math.max(1, Math.min(...nfes) * 0.9));
  const x1 = Math.log10(Math.max(...nfes) * 1.1);
  const y0 = Math.floor(Math.log10(Math.min(...errsAll)));
  const y1 = Math.ceil(Math.log10(Math.max(...errsAll)));
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  mixes.forEach((m, row) => {
    sdes.forEach((s, col) => {
      const ox = col * W;
      const oy = row * H;
      const pw = W - pad.l - pad.r;
      const ph = H - pad.t - pad.b;
      const X = (n) => ox + pad.l + ((Math.log10(n) - x0) / (x1 - x0)) * pw;
      const Y = (e) => oy + pad.t + (1 - (Math.log10(e) - y0) / (y1 - y0)) * ph;
      parts.push(
        `<text x="${ox + pad.l + pw / 2}" y="${oy + 16}" text-anchor="middle" font-weight="bold">${esc(probTitle(`${m}|${s}`))}</text>`,
      );
      parts.push(`<rect x="${ox + pad.l}" y="${oy + pad.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
      for (let d = y0; d <= y1; d++) {
        const y = Y(10 ** d);
        parts.push(`<line x1="${ox + pad.l}" x2="${ox + pad.l + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`);
        parts.push(`<text x="${ox + pad.l - 4}" y="${y + 4}" text-anchor="end">1e${d}</text>`);
      }
      for (const n of [5, 10, 20, 50, 100].filter((v) => Math.log10(v) >= x0 && Math.log10(v) <= x1)) {
        const x = X(n);
        parts.push(`<line x1="${x}" x2="${x}" y1="${oy + pad.t}" y2="${oy + pad.t + ph}" stroke="#eee"/>`);
        parts.push(`<text x="${x}" y="${oy + pad.t + ph + 14}" text-anchor="middle">${n}</text>`);
      }
      parts.push(`<text x="${ox + pad.l + pw / 2}" y="${oy + H - 6}" text-anchor="middle">NFE</text>`);
      parts.push(
        `<text x="${ox + 14}" y="${oy + pad.t + ph / 2}" text-anchor="middle" transform="rotate(-90 ${ox + 14} ${oy + pad.t + ph / 2})">max error</text>`,
      );
      solvers.forEach((solver, i) => {
        const schedule = detBest.get(`${m}|${s}|${solver}`);
        const pts = det
          .filter((r) => r.mixture === m && r.sde === s && r.solver === solver && r.schedule === schedule && r.max > 0)
          .sort((a, b) => a.nfe - b.nfe);
        if (!pts.length) return;
        const color = palette[i % palette.length];
        const d = pts.map((r) => `${X(r.nfe).toFixed(1)},${Y(r.max).toFixed(1)}`).join(' ');
        parts.push(
          `<polyline points="${d}" fill="none" stroke="${color}" stroke-width="1.6"${dash[Math.floor(i / palette.length) % dash.length] ? ` stroke-dasharray="${dash[Math.floor(i / palette.length) % dash.length]}"` : ''}/>`,
        );
        for (const r of pts)
          parts.push(`<circle cx="${X(r.nfe).toFixed(1)}" cy="${Y(r.max).toFixed(1)}" r="2" fill="${color}"/>`);
      });
    });
  });
  const lx = sdes.length * W + 10;
  parts.push(`<text x="${lx}" y="20" font-weight="bold">solver</text>`);
  parts.push(`<text x="${lx}" y="34" fill="#555">(each at its best schedule</text>`);
  parts.push(`<text x="${lx}" y="46" fill="#555">at ${BUDGET} NFE, per panel)</text>`);
  solvers.forEach((solver, i) => {
    const y = 64 + i * 16;
    const color = palette[i % palette.length];
    parts.push(`<line x1="${lx}" x2="${lx + 22}" y1="${y - 4}" y2="${y - 4}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 28}" y="${y}">${esc(solver)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
