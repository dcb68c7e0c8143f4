// PyTorch CPU reference timings for bench suites, through a system python that has torch.
import { spawnSync } from 'node:child_process';

const CANDIDATES = ['/usr/bin/python3', 'python3'];

function probe(python) {
  const r = spawnSync(
    python,
    ['-c', 'import torch,json;print(json.dumps([torch.__version__, torch.get_num_threads()]))'],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) return null;
  const [version, threads] = JSON.parse(r.stdout.trim());
  return { python, version, threads };
}

/**
 * Finds a python with torch. With `install`, installs Debian's python3-torch (+ OpenBLAS) when none is found:
 * `apt-get update && apt-get install -y python3-torch libopenblas0-pthread` (needs root).
 */
export function findTorch({ install = false, log = () => {} } = {}) {
  for (const p of CANDIDATES) {
    const t = probe(p);
    if (t) return t;
  }
  if (!install) return null;
  log('installing python3-torch with apt-get (SBM_BENCH_INSTALL_TORCH / --install-torch)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const up = spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
  const inst = spawnSync('apt-get', ['install', '-y', 'python3-torch', 'libopenblas0-pthread'], {
    stdio: 'inherit',
    env,
  });
  if (up.status !== 0 || inst.status !== 0) {
    log('apt-get failed; continuing without torch');
    return null;
  }
  return probe('/usr/bin/python3');
}

// Median and minimum of `reps` timed calls after 2 warm-ups, per case; torch keeps its default thread count
// unless argv[2] (> 0) sets one with torch.set_num_threads.
const SCRIPT = String.raw`
import json, sys, time, torch
import torch.nn.functional as F
cases = json.load(sys.stdin)
reps = int(sys.argv[1])
if len(sys.argv) > 2 and int(sys.argv[2]) > 0: torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
def med(f):
    for _ in range(2): f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    ts.sort(); n = len(ts)
    return [1000 * (ts[n // 2] if n % 2 else (ts[n // 2 - 1] + ts[n // 2]) / 2), 1000 * ts[0]]
cb = torch.ops.aten.convolution_backward
out = {}
with torch.no_grad():
    for c in cases:
        op = c['op']
        if op in ('conv2d', 'conv_dx', 'conv_dw'):
            x = torch.randn(c['x']); w = torch.randn(c['w']); s = [c['stride']] * 2; p = [c.get('padding', 0)] * 2
            y = F.conv2d(x, w, stride=s, padding=p); dy = torch.randn(y.shape)
            if op == 'conv2d': f = lambda: F.conv2d(x, w, stride=s, padding=p)
            elif op == 'conv_dx': f = lambda: cb(dy, x, w, None, s, p, [1, 1], False, [0, 0], 1, [True, False, False])
            else: f = lambda: cb(dy, x, w, None, s, p, [1, 1], False, [0, 0], 1, [False, True, False])
        elif op in ('tconv', 'tconv_dx', 'tconv_dw'):
            x = torch.randn(c['x']); w = torch.randn(c['w']); s = [c['stride']] * 2; op_ = [c['outputPadding']] * 2
            y = F.conv_transpose2d(x, w, stride=s, output_padding=op_); dy = torch.randn(y.shape)
            if op == 'tconv': f = lambda: F.conv_transpose2d(x, w, stride=s, output_padding=op_)
            elif op == 'tconv_dx': f = lambda: cb(dy, x, w, None, s, [0, 0], [1, 1], True, op_, 1, [True, False, False])
            else: f = lambda: cb(dy, x, w, None, s, [0, 0], [1, 1], True, op_, 1, [False, True, False])
        elif op == 'matmul':
            a = torch.randn(c['a']); b = torch.randn(c['b'])
            a = a.t() if c['transposeA'] else a
            b = b.t() if c['transposeB'] else b
            f = lambda: torch.mm(a, b)
        else:
            raise ValueError(op)
        out[c['id']] = med(f)
print(json.dumps(out))
`;

/**
 * Runs every case in one python process; returns { id: [medianMs, minMs] }. `threads` (optional) is passed to
 * torch.set_num_threads; without it torch keeps its default.
 */
export function torchTimes(torch, cases, reps, threads) {
  const r = spawnSync(torch.python, ['-c', SCRIPT, String(reps), String(threads ?? 0)], {
    input: JSON.stringify(cases),
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`torch timing failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim());
}
