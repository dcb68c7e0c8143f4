import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

/** A fenced code block of a README marked `runnable`, with the output it promises (if it shows one). */
export interface ReadmeExample {
  /** README path relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: 'ts' | 'js' | 'sh';
  code: string;
  /** Lines of the ```text output block right after it, if any. */
  expected?: string[];
  /** Seconds the example may take (fence attribute `timeout=N`, default 120). */
  timeout: number;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^`]*)$/;

/**
 * The runnable examples of one README: fences whose info string is `ts runnable`, `js runnable` or `sh runnable`
 * (extra attributes: `timeout=N`). A following fence with info `text output` (only blank lines or HTML comments in
 * between) holds the output the example must print.
 */
export function parseReadme(text: string, file: string): ReadmeExample[] {
  const lines = text.split('\n');
  const blocks: { info: string; line: number; body: string[]; end: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = FENCE.exec(lines[i]);
    if (!m) continue;
    const fence = m[2];
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !(lines[j].trim().startsWith(fence) && lines[j].trim().replace(/[`~]/g, '') === '')) {
      body.push(lines[j].slice(Math.min(m[1].length, lines[j].length - lines[j].trimStart().length)));
      j++;
    }
    blocks.push({ info: m[3].trim(), line: i + 1, body, end: j });
    i = j;
  }
  const out: ReadmeExample[] = [];
  blocks.forEach((b, k) => {
    const words = b.info.split(/\s+/);
    if (!words.includes('runnable')) return;
    const lang = words[0] === 'bash' ? 'sh' : words[0];
    if (lang !== 'ts' && lang !== 'js' && lang !== 'sh') {
      throw new Error(`${file}:${b.line}: runnable blocks must be ts, js or sh, got "${words[0]}"`);
    }
    const timeout = Number(words.find((w) => w.startsWith('timeout='))?.slice(8) ?? 120);
    const next = blocks[k + 1];
    let expected: string[] | undefined;
    if (next && next.info === 'text output') {
      const between = lines
        .slice(b.end + 1, next.line - 1)
        .filter((l) => l.trim() !== '' && !/^\s*<!--.*-->\s*$/.test(l));
      if (between.length === 0) expected = next.body.filter((l) => l.trim() !== '');
    }
    out.push({ file, line: b.line, lang, code: b.body.join('\n') + '\n', expected, timeout });
  });
  return out;
}

/** Every README.md of the repository root, packages/*, apps/* and tools/*, in a stable order. */
export function readmeFiles(root: string): string[] {
  const files = [join(root, 'README.md')];
  for (const top of ['packages', 'apps', 'tools']) {
    const dir = join(root, top);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir).sort()) {
      const f = join(dir, d, 'README.md');
      if (existsSync(f)) files.push(f);
    }
  }
  return files.filter((f) => existsSync(f));
}

export function collectExamples(root: string): ReadmeExample[] {
  return readmeFiles(root).flatMap((f) => parseReadme(readFileSync(f, 'utf8'), relative(root, f)));
}

const NUMBER = /^[-+−]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?%?$/i;

/**
 * Compares printed output with the promised lines: the same tokens in order, where a number in the promise matches
 * a printed number that rounds to it at the promise's precision (`0.98` accepts 0.9751…0.9849; `3e-3` accepts
 * 2.5e-3…3.5e-3). Lines the program prints beyond the promise are ignored only at the end. Returns undefined when
 * they match, else a message naming the first difference.
 */
export function compareOutput(printed: string[], expected: string[]): string | undefined {
  for (let i = 0; i < expected.length; i++) {
    const got = printed[i];
    if (got === undefined)
      return `line ${i + 1}: expected "${expected[i]}", but the example printed only ${printed.length} lines`;
    const e = expected[i].trim().split(/\s+/);
    const g = got.trim().split(/\s+/);
    const bad = () => `line ${i + 1}: expected "${expected[i].trim()}", got "${got.trim()}"`;
    if (e.length !== g.length) return bad();
    for (let k = 0; k < e.length; k++) {
      const [et, gt] = [e[k].replace(/[,;]$/, ''), g[k].replace(/[,;]$/, '')];
      if (NUMBER.test(et) && NUMBER.test(gt)) {
        const num = (s: string) => Number(s.replace('−', '-').replace('%', ''));
        const mant = et.replace(/e.*$/i, '').replace('%', '');
        const decimals = mant.includes('.') ? mant.split('.')[1].length : 0;
        const exp = /e([-+]?\d+)/i.exec(et);
        const half = 0.5 * 10 ** (-decimals + (exp ? Number(exp[1]) : 0));
        if (!(Math.abs(num(gt) - num(et)) <= half * (1 + 1e-9))) return bad();
      } else if (et !== gt) return bad();
    }
  }
  return undefined;
}
