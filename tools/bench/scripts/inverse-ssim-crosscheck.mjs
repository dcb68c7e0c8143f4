#!/usr/bin/env node
// Cross-checks @sbm/metrics psnr / ssim against an independent numpy + scipy implementation of scikit-image's
// structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=R, channel_axis=-1)
// and peak_signal_noise_ratio (scikit-image itself is not installed here, so the Python side re-derives it from
// scipy.ndimage.gaussian_filter(truncate=3.5) + crop, exactly as skimage/metrics/_structural_similarity.py does).
// Usage: node tools/bench/scripts/inverse-ssim-crosscheck.mjs   (needs python3 with numpy and scipy; built metrics
// dist: cd packages/metrics && npx tsup). Prints one JSON line per case and exits 1 on a mismatch > 1e-10.
import { spawnSync } from 'node:child_process';
import { psnr, ssim } from '../../../packages/metrics/dist/index.js';

/** Deterministic images: smooth pattern + LCG noise, values roughly in [0, 1]. */
function image(n, h, w, c, seed, smooth) {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out = new Array(n * h * w * c);
  for (let k = 0; k < n; k++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let ch = 0; ch < c; ch++)
          out[((k * h + i) * w + j) * c + ch] =
            smooth * (0.5 + 0.4 * Math.sin(0.37 * i + 0.71 * j + 1.3 * ch + k)) + (1 - smooth) * rnd();
  return out;
}

const cases = [];
for (const [n, h, w, c] of [
  [1, 28, 28, 1],
  [3, 28, 28, 3],
  [2, 11, 11, 1],
  [2, 16, 23, 2],
]) {
  for (const window of [11, 7]) {
    const a = image(n, h, w, c, 1 + h + c, 0.7);
    const b = a.map((v, i) => v + 0.2 * (image(1, 1, 1, 1, i + 7, 0)[0] - 0.5) + 0.05);
    cases.push({ shape: [n, h, w, c], window, range: 1, a, b });
    // Unrelated images (SSIM far from 1, negative local covariances) on a [−1, 1] range.
    const u = image(n, h, w, c, 99 + w, 0.3).map((v) => 2 * v - 1);
    const v = image(n, h, w, c, 5 + h, 0.1).map((z) => 2 * z - 1);
    cases.push({ shape: [n, h, w, c], window, range: 2, a: u, b: v });
  }
}

const py = String.raw`
import json, sys
import numpy as np
from scipy.ndimage import gaussian_filter
cases = json.load(sys.stdin)
out = []
for cs in cases:
    n, h, w, c = cs['shape']; win = cs['window']; R = cs['range']
    a = np.array(cs['a'], dtype=np.float64).reshape(n, h, w, c)
    b = np.array(cs['b'], dtype=np.float64).reshape(n, h, w, c)
    r = (win - 1) // 2
    trunc = r / 1.5  # radius = int(truncate * sigma + 0.5) = r
    C1 = (0.01 * R) ** 2; C2 = (0.03 * R) ** 2
    ps, ss = [], []
    for k in range(n):
        mse = np.mean((a[k] - b[k]) ** 2)
        ps.append(10 * np.log10(R * R / mse))
        chans = []
        for ch in range(c):
            x = a[k, :, :, ch]; y = b[k, :, :, ch]
            f = lambda z: gaussian_filter(z, sigma=1.5, truncate=trunc)
            ux, uy = f(x), f(y)
            vx = f(x * x) - ux * ux; vy = f(y * y) - uy * uy; vxy = f(x * y) - ux * uy
            S = ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux ** 2 + uy ** 2 + C1) * (vx + vy + C2))
            chans.append(S[r:h - r, r:w - r].mean(dtype=np.float64))
        ss.append(np.mean(chans))
    out.append({'psnr': float(np.mean(ps)), 'ssim': float(np.mean(ss))})
print(json.dumps(out))
`;
const res = spawnSync('python3', ['-c', py], { input: JSON.stringify(cases), encoding: 'utf8' });
if (res.status !== 0) {
  console.error(res.stderr);
  process.exit(2);
}
const ref = JSON.parse(res.stdout);
let worst = 0;
cases.forEach((cs, i) => {
  const a = { data: cs.a, shape: cs.shape };
  const b = { data: cs.b, shape: cs.shape };
  const p = psnr(a, b, { dataRange: cs.range });
  const s = ssim(a, b, { dataRange: cs.range, window: cs.window });
  const dp = Math.abs(p - ref[i].psnr);
  const ds = Math.abs(s - ref[i].ssim);
  worst = Math.max(worst, dp, ds);
  console.log(
    JSON.stringify({
      shape: cs.shape,
      window: cs.window,
      psnr: p,
      psnrRef: ref[i].psnr,
      ssim: s,
      ssimRef: ref[i].ssim,
      dPsnr: dp,
      dSsim: ds,
    }),
  );
});
console.log(JSON.stringify({ worstAbsDiff: worst, ok: worst < 1e-10 }));
process.exit(worst < 1e-10 ? 0 : 1);
