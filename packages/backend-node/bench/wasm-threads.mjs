// Bench suite for tools/bench/suites/ (copy or symlink it there as wasm-threads.mjs):
// `npm run bench -- wasm-threads [--reps N] [--threads 1,2]`
// matMul / conv2d / conv2d filter gradient on tfjs's wasm backend in Node, single-threaded (tfjs's own SIMD build)
// against @sbm/backend-node's multithreaded build. Each thread count runs in its own process, because the wasm
// backend's thread pool is fixed once it starts. Needs packages/core, packages/wasm-kernels and
// packages/backend-node built (`npx tsup` in each).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CASES = [
  { op: 'matMul', shape: '512x512 · 512x512' },
  { op: 'conv2d', shape: 'x[16,32,32,32] k[3,3,32,32] same' },
  { op: 'conv2dFilterGrad', shape: 'x[16,32,32,32] k[3,3,32,32] same' },
];

async function child(threads, reps) {
  const tf = await import('@tensorflow/tfjs');
  const { initWasm } = await import('@sbm/backend-node');
  const info = await initWasm({ threads });
  const a = tf.randomNormal([512, 512], 0, 1, 'float32', 1);
  const b = tf.randomNormal([512, 512], 0, 1, 'float32', 2);
  const x = tf.randomNormal([16, 32, 32, 32], 0, 1, 'float32', 3);
  const k = tf.randomNormal([3, 3, 32, 32], 0, 1, 'float32', 4);
  const fns = {
    matMul: () => tf.matMul(a, b),
    conv2d: () => tf.conv2d(x, k, 1, 'same'),
    conv2dFilterGrad: () => tf.grad((kk) => tf.conv2d(x, kk, 1, 'same').sum())(k),
  };
  const out = [];
  for (const c of CASES) {
    const ts = [];
    for (let i = 0; i < reps + 3; i++) {
      const t0 = performance.now();
      const y = fns[c.op]();
      await y.data();
      y.dispose();
      if (i >= 3) ts.push(performance.now() - t0);
    }
    ts.sort((p, q) => p - q);
    out.push({ ...c, threads: info.threads, median_ms: +ts[ts.length >> 1].toFixed(3), min_ms: +ts[0].toFixed(3) });
  }
  console.log(JSON.stringify(out));
}

export async function run({ args, emit, log }) {
  const get = (name, dflt) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
  };
  const reps = Number(get('reps', '30'));
  const counts = get('threads', '1,2').split(',').map(Number);
  for (const threads of counts) {
    log(`threads=${threads}`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', String(threads), String(reps)], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`child with ${threads} threads failed: ${r.stderr}`);
    for (const rec of JSON.parse(r.stdout.trim().split('\n').pop())) emit(rec);
  }
}

if (process.argv[2] === '--child') await child(Number(process.argv[3]), Number(process.argv[4]));
