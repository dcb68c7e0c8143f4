// TEMPORARY: PSNR and SSIM for the inverse-problem commands until @sbm/metrics exports its own (the bench helper's
// packages/metrics/src/image.ts, same signatures). Remove this file once it lands.

export interface Images {
  data: ArrayLike<number>;
  /** [N, H, W, C]. */
  shape: readonly number[];
}

/** PSNR per image, 10 log₁₀(R² / MSE) with R the width of `dataRange` (∞ for identical images). */
export function psnrPerImage(a: Images, b: Images, opts: { dataRange: readonly [number, number] }): number[] {
  const [n, h, w, c] = a.shape;
  const per = h * w * c;
  const r = opts.dataRange[1] - opts.dataRange[0];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let se = 0;
    for (let j = i * per; j < (i + 1) * per; j++) se += (a.data[j] - b.data[j]) ** 2;
    out.push(10 * Math.log10((r * r) / (se / per)));
  }
  return out;
}

/**
 * SSIM per image (Wang et al. 2004): 11×11 Gaussian window σ = 1.5 over the valid region, C₁ = (0.01 R)²,
 * C₂ = (0.03 R)², population moments, averaged over pixels and channels.
 */
export function ssimPerImage(a: Images, b: Images, opts: { dataRange: readonly [number, number] }): number[] {
  const [n, h, w, c] = a.shape;
  const r = opts.dataRange[1] - opts.dataRange[0];
  const c1 = (0.01 * r) ** 2;
  const c2 = (0.03 * r) ** 2;
  const rad = Math.min(5, Math.floor((Math.min(h, w) - 1) / 2));
  const g: number[] = [];
  for (let k = -rad; k <= rad; k++) g.push(Math.exp(-(k * k) / (2 * 1.5 * 1.5)));
  const gs = g.reduce((s, v) => s + v, 0);
  const win = g.map((v) => v / gs);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let total = 0;
    let count = 0;
    for (let ch = 0; ch < c; ch++) {
      const at = (d: ArrayLike<number>, y: number, x: number) => d[((i * h + y) * w + x) * c + ch];
      for (let y = rad; y < h - rad; y++) {
        for (let x = rad; x < w - rad; x++) {
          let ma = 0;
          let mb = 0;
          let aa = 0;
          let bb = 0;
          let ab = 0;
          for (let dy = -rad; dy <= rad; dy++) {
            for (let dx = -rad; dx <= rad; dx++) {
              const wt = win[dy + rad] * win[dx + rad];
              const va = at(a.data, y + dy, x + dx);
              const vb = at(b.data, y + dy, x + dx);
              ma += wt * va;
              mb += wt * vb;
              aa += wt * va * va;
              bb += wt * vb * vb;
              ab += wt * va * vb;
            }
          }
          const va = aa - ma * ma;
          const vb = bb - mb * mb;
          const cov = ab - ma * mb;
          total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
          count++;
        }
      }
    }
    out.push(total / count);
  }
  return out;
}
