// AssemblyScript source of @sbm/wasm-kernels' SIMD module (compiled by scripts/build-wasm.mjs, not by tsc).
// Every function works on float32 tensors that live on the tfjs wasm heap: the module imports that memory and is
// given byte offsets. It owns no memory: no data segments, no allocator, no stack; scratch comes from the caller.

// ---------------------------------------------------------------------------------------------------------------
// exp and sigmoid on 4 lanes

// exp(t) for t ≤ 0: t = n·ln2 + r with |r| ≤ ln2/2, exp(r) by its degree-6 Taylor polynomial (relative error
// < 2e−7 on that range), 2ⁿ through the exponent bits. Below t = −87 (exp = 1.6e−38, the last normal floats) the
// result is 0, as float32 1/(1 + exp(87…)) is on the cpu backend.
// @ts-ignore: decorator
@inline function expNeg4(t: v128): v128 {
  const inRange = f32x4.ge(t, f32x4.splat(-87.0));
  t = f32x4.max(t, f32x4.splat(-87.0));
  const n = f32x4.nearest(f32x4.mul(t, f32x4.splat(1.4426950408889634)));
  let r = f32x4.sub(t, f32x4.mul(n, f32x4.splat(0.693145751953125)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(1.428606765330187e-6)));
  let p = f32x4.add(f32x4.mul(r, f32x4.splat(1.0 / 720.0)), f32x4.splat(1.0 / 120.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 24.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 6.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(0.5));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.and(f32x4.mul(p, e), inRange);
}

// σ(u) = 1/(1 + e^−u) for u ≥ 0 and e^u/(1 + e^u) below, so that both tails keep their relative precision.
// @ts-ignore: decorator
@inline function sigmoid4(u: v128): v128 {
  const z = expNeg4(f32x4.neg(f32x4.abs(u)));
  const s = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), z));
  return v128.bitselect(s, f32x4.mul(z, s), f32x4.ge(u, f32x4.splat(0.0)));
}

// @ts-ignore: decorator
@inline function sigmoid1(u: f32): f32 {
  return f32x4.extract_lane(sigmoid4(f32x4.splat(u)), 0);
}

// @ts-ignore: decorator
@inline function hiHalf(v: v128): v128 {
  return v128.shuffle<f32>(v, v, 2, 3, 0, 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Group normalization

// Scratch (at the caller's `scratch`, sized by groupNormScratchBytes): float64 arrays of C — ra, rb, cs, cq, b0,
// (backward: s1, s2, dgamma, dbeta, dbias,) mu — then float32 arrays of C — scale, mu (backward: r, k1, k2, k3).
export function groupNormScratchBytes(C: i32): i32 {
  return C * 8 * 12 + C * 4 * 6 + 64;
}

// Per-sample affine form of the normalization, n = x·ra[c] + rb[c] = (x − mu[c])·ra[c] with v = x + bias[b, c],
// n = (v − μ_g)/s_g, s = √(σ² + eps) and mu = μ_g − bias[b, c]: statistics in float64, per channel (a contiguous
// inner loop) then per group — the same routine as the JavaScript fallback, so forward and backward see the same μ
// and s. The float32 passes use the centred form (x − mu)·r: x·ra + rb cancels when the mean is large against s.
function groupAffine(
  x: usize, bias: usize, b: i32, P: i32, C: i32, groups: i32, eps: f64,
  ra: usize, rb: usize, cs: usize, cq: usize, b0: usize, mu: usize,
): void {
  const C4 = C & ~3;
  for (let c = 0; c < C; c++) {
    store<f64>(b0 + (<usize>c << 3), bias ? <f64>load<f32>(bias + (<usize>(b * C + c) << 2)) : 0.0);
    store<f64>(cs + (<usize>c << 3), 0.0);
    store<f64>(cq + (<usize>c << 3), 0.0);
  }
  let o: usize = x + (<usize>b * <usize>P * <usize>C << 2);
  for (let p = 0; p < P; p++) {
    let c = 0;
    for (; c < C4; c += 4) {
      const v = v128.load(o + (<usize>c << 2));
      const q: usize = <usize>c << 3;
      const lo = f64x2.add(f64x2.promote_low_f32x4(v), v128.load(b0 + q));
      const hi = f64x2.add(f64x2.promote_low_f32x4(hiHalf(v)), v128.load(b0 + q, 16));
      v128.store(cs + q, f64x2.add(v128.load(cs + q), lo));
      v128.store(cs + q, f64x2.add(v128.load(cs + q, 16), hi), 16);
      v128.store(cq + q, f64x2.add(v128.load(cq + q), f64x2.mul(lo, lo)));
      v128.store(cq + q, f64x2.add(v128.load(cq + q, 16), f64x2.mul(hi, hi)), 16);
    }
    for (; c < C; c++) {
      const q: usize = <usize>c << 3;
      const v = <f64>load<f32>(o + (<usize>c << 2)) + load<f64>(b0 + q);
      store<f64>(cs + q, load<f64>(cs + q) + v);
      store<f64>(cq + q, load<f64>(cq + q) + v * v);
    }
    o += <usize>C << 2;
  }
  const cpg = C / groups;
  const n = <f64>P * <f64>cpg;
  for (let k = 0; k < groups; k++) {
    let sum = 0.0;
    let sq = 0.0;
    for (let c = k * cpg; c < (k + 1) * cpg; c++) {
      sum += load<f64>(cs + (<usize>c << 3));
      sq += load<f64>(cq + (<usize>c << 3));
    }
    const mean = sum / n;
    // Biased variance, as torch.nn.GroupNorm; clamped at 0 against rounding in E[v²] − μ².
    const variance = Math.max(sq / n - mean * mean, 0.0);
    const r = 1.0 / Math.sqrt(variance + eps);
    for (let c = k * cpg; c < (k + 1) * cpg; c++) {
      const q: usize = <usize>c << 3;
      store<f64>(ra + q, r);
      store<f64>(rb + q, (load<f64>(b0 + q) - mean) * r);
      store<f64>(mu + q, mean - load<f64>(b0 + q));
    }
  }
}

// y = act(γ·(v − μ_g)/s_g + β), v = x + bias[b, c], act the identity or swish (u·σ(u)). x, y: [B, P, C]; bias [B, C]
// or 0; gamma, beta [C].
export function groupNormForward(
  x: usize, bias: usize, gamma: usize, beta: usize, y: usize,
  B: i32, P: i32, C: i32, groups: i32, eps: f64, swish: i32, scratch: usize,
): void {
  const C8: usize = <usize>C << 3;
  const ra = scratch;
  const rb = ra + C8;
  const cs = rb + C8;
  const cq = cs + C8;
  const b0 = cq + C8;
  const mu = b0 + C8;
  const scale = mu + C8;
  const mf = scale + (<usize>C << 2);
  const C4 = C & ~3;
  for (let b = 0; b < B; b++) {
    groupAffine(x, bias, b, P, C, groups, eps, ra, rb, cs, cq, b0, mu);
    for (let c = 0; c < C; c++) {
      const g = <f64>load<f32>(gamma + (<usize>c << 2));
      store<f32>(scale + (<usize>c << 2), <f32>(g * load<f64>(ra + (<usize>c << 3))));
      store<f32>(mf + (<usize>c << 2), <f32>load<f64>(mu + (<usize>c << 3)));
    }
    const base: usize = <usize>b * <usize>P * <usize>C << 2;
    let xi = x + base;
    let yi = y + base;
    for (let p = 0; p < P; p++) {
      let c = 0;
      for (; c < C4; c += 4) {
        const q: usize = <usize>c << 2;
        let u = f32x4.add(
          f32x4.mul(f32x4.sub(v128.load(xi + q), v128.load(mf + q)), v128.load(scale + q)),
          v128.load(beta + q),
        );
        if (swish) u = f32x4.mul(u, sigmoid4(u));
        v128.store(yi + q, u);
      }
      for (; c < C; c++) {
        const q: usize = <usize>c << 2;
        let u = (load<f32>(xi + q) - load<f32>(mf + q)) * load<f32>(scale + q) + load<f32>(beta + q);
        if (swish) u = u * sigmoid1(u);
        store<f32>(yi + q, u);
      }
      xi += <usize>C << 2;
      yi += <usize>C << 2;
    }
  }
}

// The backward pass (see group_norm_grad.ts): d = dy·swish'(u) (or dy), dβ = Σd, dγ = Σd·n, and
// dx = d·(γr) + (x − mu)·(−B_g r²) − A_g r with A_g = mean_g(γd), B_g = mean_g(γd·n); dbias[b, c] = Σ_p dx.
// Outputs dx [B, P, C] and dbias [B, C] (float32), and per sample b its Σd and Σd·n per channel (float64) at
// partials + b·2C·8: dβ and dγ are their sums over the samples (sumRows64).
export function groupNormBackward(
  dy: usize, x: usize, bias: usize, gamma: usize, beta: usize,
  dx: usize, dbias: usize, partials: usize,
  B: i32, P: i32, C: i32, groups: i32, eps: f64, swish: i32, scratch: usize,
): void {
  const C8: usize = <usize>C << 3;
  const C4b: usize = <usize>C << 2;
  const ra = scratch;
  const rb = ra + C8;
  const cs = rb + C8;
  const cq = cs + C8;
  const b0 = cq + C8;
  const s1 = b0 + C8;
  const s2 = s1 + C8;
  const dbi = s2 + C8;
  const mu = dbi + C8;
  const scale = mu + C8;
  const mf = scale + C4b;
  const raf = mf + C4b;
  // float64 coefficients of pass 2, in the statistics' scratch (free once groupAffine has returned for the sample)
  const k1 = cs;
  const k2 = cq;
  const k3 = b0;
  const C4 = C & ~3;
  const cpg = C / groups;
  const N = <f64>P * <f64>cpg;
  for (let b = 0; b < B; b++) {
    groupAffine(x, bias, b, P, C, groups, eps, ra, rb, cs, cq, b0, mu);
    for (let c = 0; c < C; c++) {
      const q4: usize = <usize>c << 2;
      const q8: usize = <usize>c << 3;
      const g = <f64>load<f32>(gamma + q4);
      store<f32>(scale + q4, <f32>(g * load<f64>(ra + q8)));
      store<f32>(mf + q4, <f32>load<f64>(mu + q8));
      store<f32>(raf + q4, <f32>load<f64>(ra + q8));
      store<f64>(s1 + q8, 0.0);
      store<f64>(s2 + q8, 0.0);
      store<f64>(dbi + q8, 0.0);
    }
    const base: usize = <usize>b * <usize>P * <usize>C << 2;
    // Pass 1: d into dx, with its per-channel sums Σd and Σd·n (float64).
    let xi = x + base;
    let di = dy + base;
    let oi = dx + base;
    for (let p = 0; p < P; p++) {
      let c = 0;
      for (; c < C4; c += 4) {
        const q: usize = <usize>c << 2;
        const q8: usize = <usize>c << 3;
        const xc = f32x4.sub(v128.load(xi + q), v128.load(mf + q));
        let d = v128.load(di + q);
        if (swish) {
          // The forward's own expression, so σ sees the same float32 u.
          const u = f32x4.add(f32x4.mul(xc, v128.load(scale + q)), v128.load(beta + q));
          const sg = sigmoid4(u);
          const one = f32x4.splat(1.0);
          d = f32x4.mul(f32x4.mul(d, sg), f32x4.add(one, f32x4.mul(u, f32x4.sub(one, sg))));
        }
        v128.store(oi + q, d);
        const n = f32x4.mul(xc, v128.load(raf + q));
        const dlo = f64x2.promote_low_f32x4(d);
        const dhi = f64x2.promote_low_f32x4(hiHalf(d));
        v128.store(s1 + q8, f64x2.add(v128.load(s1 + q8), dlo));
        v128.store(s1 + q8, f64x2.add(v128.load(s1 + q8, 16), dhi), 16);
        v128.store(s2 + q8, f64x2.add(v128.load(s2 + q8), f64x2.mul(dlo, f64x2.promote_low_f32x4(n))));
        v128.store(s2 + q8, f64x2.add(v128.load(s2 + q8, 16), f64x2.mul(dhi, f64x2.promote_low_f32x4(hiHalf(n)))), 16);
      }
      for (; c < C; c++) {
        const q: usize = <usize>c << 2;
        const q8: usize = <usize>c << 3;
        const xc = load<f32>(xi + q) - load<f32>(mf + q);
        let d = load<f32>(di + q);
        if (swish) {
          const u = xc * load<f32>(scale + q) + load<f32>(beta + q);
          const sg = sigmoid1(u);
          d = d * sg * (1.0 + u * (1.0 - sg));
        }
        store<f32>(oi + q, d);
        const n = xc * load<f32>(raf + q);
        store<f64>(s1 + q8, load<f64>(s1 + q8) + <f64>d);
        store<f64>(s2 + q8, load<f64>(s2 + q8) + <f64>d * <f64>n);
      }
      xi += C4b;
      di += C4b;
      oi += C4b;
    }
    // Per group: A = mean_g(γ d), B_g = mean_g(γ d n); the per-channel coefficients of dx.
    for (let k = 0; k < groups; k++) {
      let ga = 0.0;
      let gb = 0.0;
      for (let c = k * cpg; c < (k + 1) * cpg; c++) {
        const q8: usize = <usize>c << 3;
        const g = <f64>load<f32>(gamma + (<usize>c << 2));
        const a1 = load<f64>(s1 + q8);
        const a2 = load<f64>(s2 + q8);
        // This sample's Σd and Σd·n: dβ and dγ are their sums over samples (sumRows64, in sample order).
        const row = partials + (<usize>b * <usize>C << 4);
        store<f64>(row + q8, a1);
        store<f64>(row + C8 + q8, a2);
        ga += g * a1;
        gb += g * a2;
      }
      const A = ga / N;
      const Bg = gb / N;
      for (let c = k * cpg; c < (k + 1) * cpg; c++) {
        const q4: usize = <usize>c << 2;
        const q8: usize = <usize>c << 3;
        const r = load<f64>(ra + q8);
        store<f64>(k1 + q8, <f64>load<f32>(gamma + q4) * r);
        store<f64>(k2 + q8, -Bg * r * r);
        store<f64>(k3 + q8, -A * r);
      }
    }
    // Pass 2: dx = d·k1 + (x − mu)·k2 + k3 (= (γd − A − n·B_g)·r) and its per-channel sums (dbias), in float64
    // (two lanes): the three terms can be much larger than dx, which float32 would then carry with their rounding.
    xi = x + base;
    oi = dx + base;
    for (let p = 0; p < P; p++) {
      let c = 0;
      for (; c < C4; c += 4) {
        const q: usize = <usize>c << 2;
        const q8: usize = <usize>c << 3;
        const xv = v128.load(xi + q);
        const dv = v128.load(oi + q);
        const xlo = f64x2.sub(f64x2.promote_low_f32x4(xv), v128.load(mu + q8));
        const xhi = f64x2.sub(f64x2.promote_low_f32x4(hiHalf(xv)), v128.load(mu + q8, 16));
        const lo = f64x2.add(
          f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(dv), v128.load(k1 + q8)), f64x2.mul(xlo, v128.load(k2 + q8))),
          v128.load(k3 + q8),
        );
        const hi = f64x2.add(
          f64x2.add(
            f64x2.mul(f64x2.promote_low_f32x4(hiHalf(dv)), v128.load(k1 + q8, 16)),
            f64x2.mul(xhi, v128.load(k2 + q8, 16)),
          ),
          v128.load(k3 + q8, 16),
        );
        v128.store(oi + q, v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
        v128.store(dbi + q8, f64x2.add(v128.load(dbi + q8), lo));
        v128.store(dbi + q8, f64x2.add(v128.load(dbi + q8, 16), hi), 16);
      }
      for (; c < C; c++) {
        const q: usize = <usize>c << 2;
        const q8: usize = <usize>c << 3;
        const xc = <f64>load<f32>(xi + q) - load<f64>(mu + q8);
        const v = <f64>load<f32>(oi + q) * load<f64>(k1 + q8) + xc * load<f64>(k2 + q8) + load<f64>(k3 + q8);
        store<f32>(oi + q, <f32>v);
        store<f64>(dbi + q8, load<f64>(dbi + q8) + v);
      }
      xi += C4b;
      oi += C4b;
    }
    for (let c = 0; c < C; c++) {
      store<f32>(dbias + (<usize>(b * C + c) << 2), <f32>load<f64>(dbi + (<usize>c << 3)));
    }
  }
}

// dst[c] = Σ_r src[r·stride + c] (float64, r = 0, 1, … in order; rounded once to float32), c < cols. The fixed
// order makes a result independent of how the rows were split between threads.
export function sumRows64(src: usize, rows: i32, stride: i32, dst: usize, cols: i32): void {
  for (let c = 0; c < cols; c++) {
    let t = 0.0;
    for (let r = 0; r < rows; r++) t += load<f64>(src + (<usize>(r * stride + c) << 3));
    store<f32>(dst + (<usize>c << 2), <f32>t);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Adam and EMA (float32 SIMD lanes are IEEE float32 operations, so these are bit-identical to the scalar
// Math.fround forms in adam.ts / ema.ts and to the composite tfjs forms)

// One weight of Adam: g' = g·scale; m' = β1·m + c1·g'; v' = β2·v + c2·g'²; p' = p − (m' / (√v' / sqrtBc2 + eps))·stepSize.
export function adamUpdate(
  p: usize, g: usize, m: usize, v: usize, po: usize, mo: usize, vo: usize, n: i32,
  scale: f32, b1: f32, c1: f32, b2: f32, c2: f32, eps: f32, stepSize: f32, sqrtBc2: f32,
): void {
  const S = f32x4.splat(scale);
  const B1 = f32x4.splat(b1);
  const C1 = f32x4.splat(c1);
  const B2 = f32x4.splat(b2);
  const C2 = f32x4.splat(c2);
  const E = f32x4.splat(eps);
  const L = f32x4.splat(stepSize);
  const Q = f32x4.splat(sqrtBc2);
  const n4 = n & ~3;
  let j = 0;
  for (; j < n4; j += 4) {
    const q: usize = <usize>j << 2;
    const gj = f32x4.mul(v128.load(g + q), S);
    const mj = f32x4.add(f32x4.mul(v128.load(m + q), B1), f32x4.mul(gj, C1));
    const vj = f32x4.add(f32x4.mul(v128.load(v + q), B2), f32x4.mul(f32x4.mul(gj, gj), C2));
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vj), Q), E);
    v128.store(mo + q, mj);
    v128.store(vo + q, vj);
    v128.store(po + q, f32x4.sub(v128.load(p + q), f32x4.mul(f32x4.div(mj, denom), L)));
  }
  for (; j < n; j++) {
    const q: usize = <usize>j << 2;
    const gj = load<f32>(g + q) * scale;
    const mj = load<f32>(m + q) * b1 + gj * c1;
    const vj = load<f32>(v + q) * b2 + gj * gj * c2;
    const denom = Mathf.sqrt(vj) / sqrtBc2 + eps;
    store<f32>(mo + q, mj);
    store<f32>(vo + q, vj);
    store<f32>(po + q, load<f32>(p + q) - (mj / denom) * stepSize);
  }
}

// One shadow of the EMA: o = s − (s − p)·w.
export function emaUpdate(s: usize, p: usize, o: usize, n: i32, w: f32): void {
  const Wv = f32x4.splat(w);
  const n4 = n & ~3;
  let j = 0;
  for (; j < n4; j += 4) {
    const q: usize = <usize>j << 2;
    const sv = v128.load(s + q);
    v128.store(o + q, f32x4.sub(sv, f32x4.mul(f32x4.sub(sv, v128.load(p + q)), Wv)));
  }
  for (; j < n; j++) {
    const q: usize = <usize>j << 2;
    const sv = load<f32>(s + q);
    store<f32>(o + q, sv - (sv - load<f32>(p + q)) * w);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Strided row copies (Concat and SplitV along an inner axis): `rows` rows of `rowBytes` (a multiple of 4) from
// src, src + srcStride, ... to dst, dst + dstStride, ...

export function copyRows(src: usize, srcStride: i32, dst: usize, dstStride: i32, rowBytes: i32, rows: i32): void {
  const n16 = rowBytes & ~15;
  for (let r = 0; r < rows; r++) {
    const s = src + <usize>r * <usize>srcStride;
    const d = dst + <usize>r * <usize>dstStride;
    let i = 0;
    for (; i < n16; i += 16) v128.store(d + <usize>i, v128.load(s + <usize>i));
    for (; i < rowBytes; i += 4) store<i32>(d + <usize>i, load<i32>(s + <usize>i));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Conv2D filter gradient for few input channels (K = KH·KW·C small): dW[kh, kw, ci, co] =
// Σ_{b, oh, ow} x[b, oh·sh + kh·dh − pt, ow·sw + kw·dw − pl, ci] · dy[b, oh, ow, co], directly, with the K × CO
// accumulators in cache. (im2col + GEMM has an M of K rows there: XNNPACK repacks all of dy as the "weights" for
// a handful of output rows.) Per image the float32 partial sums go into float64 totals, so the rounding stays that
// of a sum over one image: image b's K·CO sums go to partials + b·K·CO·8 (float64), and dW is their sum over the
// images (sumRows64). x NHWC [B, H, W, C], dy [B, OH, OW, CO]; scratch: K·CO float32.
export function filterGradSmallK(
  x: usize, dy: usize, partials: usize, B: i32, H: i32, W: i32, C: i32, OH: i32, OW: i32, CO: i32,
  KH: i32, KW: i32, sh: i32, sw: i32, dh: i32, dwid: i32, pt: i32, pl: i32, scratch: usize,
): void {
  const K = KH * KW * C;
  const KC = K * CO;
  const acc = scratch;
  const CO4 = CO & ~3;
  const rowBytes: usize = <usize>CO << 2;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < KC; i++) store<f32>(acc + (<usize>i << 2), 0.0);
    const xb = x + (<usize>b * <usize>H * <usize>W * <usize>C << 2);
    let d = dy + (<usize>b * <usize>OH * <usize>OW * <usize>CO << 2);
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - pt;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw * dwid - pl;
            if (iw < 0 || iw >= W) continue;
            const xp = xb + (<usize>((ih * W + iw) * C) << 2);
            let a = acc + (<usize>((kh * KW + kw) * C) * rowBytes);
            for (let ci = 0; ci < C; ci++) {
              const xs = load<f32>(xp + (<usize>ci << 2));
              const xv = f32x4.splat(xs);
              let co = 0;
              for (; co < CO4; co += 4) {
                const q: usize = <usize>co << 2;
                v128.store(a + q, f32x4.add(v128.load(a + q), f32x4.mul(xv, v128.load(d + q))));
              }
              for (; co < CO; co++) {
                const q: usize = <usize>co << 2;
                store<f32>(a + q, load<f32>(a + q) + xs * load<f32>(d + q));
              }
              a += rowBytes;
            }
          }
        }
        d += rowBytes;
      }
    }
    const row = partials + (<usize>b * <usize>KC << 3);
    for (let i = 0; i < KC; i++) store<f64>(row + (<usize>i << 3), <f64>load<f32>(acc + (<usize>i << 2)));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// im2col / col2im for the conv gradients (see conv2d_backprop_filter.ts and conv2d_backprop_input.ts)

// colT[K, nb·OH·OW] for images b0 … b0 + nb − 1: row (kh, kw, c) holds x[b, oh·sh + kh·dh − pt, ow·sw + kw·dw − pl, c]
// (0 in the padding) for every output position (b, oh, ow). xT is x as [C, B, H, W]. Only rows r0 … r1 − 1 of
// colT (r = (kh·KW + kw)·C + c) are written, so that threads can share the work.
export function im2colT(
  xT: usize, col: usize, B: i32, H: i32, W: i32, C: i32, OH: i32, OW: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, dh: i32, dwid: i32, pt: i32, pl: i32, b0: i32, nb: i32, r0: i32, r1: i32,
): void {
  const plane = B * H * W;
  const rowBytes: usize = <usize>OW << 2;
  for (let r = r0; r < r1; r++) {
    const c = r % C;
    const kw = (r / C) % KW;
    const kh = r / (C * KW);
    let o = col + <usize>r * <usize>nb * <usize>OH * rowBytes;
    {
      const shift = kw * dwid - pl;
      // Output columns whose input column is inside the image: [owLo, owHi).
      let owLo = shift >= 0 ? 0 : (-shift + sw - 1) / sw;
      if (owLo > OW) owLo = OW;
      let owHi = W - 1 - shift < 0 ? 0 : (W - 1 - shift) / sw + 1;
      if (owHi > OW) owHi = OW;
      if (owHi < owLo) owHi = owLo;
      {
        for (let b = b0; b < b0 + nb; b++) {
          const image = xT + (<usize>(c * plane + b * H * W) << 2);
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * sh + kh * dh - pt;
            if (ih < 0 || ih >= H) {
              memory.fill(o, 0, rowBytes);
            } else {
              if (owLo > 0) memory.fill(o, 0, <usize>owLo << 2);
              const src = image + (<usize>(ih * W + owLo * sw + shift) << 2);
              const dst = o + (<usize>owLo << 2);
              const len = owHi - owLo;
              if (sw == 1) {
                let i = 0;
                for (; i + 4 <= len; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
                for (; i < len; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
              } else {
                const step: usize = <usize>sw << 2;
                let s = src;
                for (let i = 0; i < len; i++) {
                  store<f32>(dst + (<usize>i << 2), load<f32>(s));
                  s += step;
                }
              }
              if (owHi < OW) memory.fill(o + (<usize>owHi << 2), 0, <usize>(OW - owHi) << 2);
            }
            o += rowBytes;
          }
        }
      }
    }
  }
}

// dx[B, H, W, C] = Σ over output positions and taps of cols[P, K] rows scattered back (col2im), dx zeroed first.
export function col2imAdd(
  cols: usize, dx: usize, B: i32, H: i32, W: i32, C: i32, OH: i32, OW: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, pt: i32, pl: i32,
): void {
  memory.fill(dx, 0, <usize>B * <usize>H * <usize>W * <usize>C << 2);
  const C4 = C & ~3;
  const runBytes: usize = <usize>C << 2;
  let q = cols;
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh - pt;
          if (ih < 0 || ih >= H) {
            q += <usize>KW * runBytes;
            continue;
          }
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw - pl;
            if (iw >= 0 && iw < W) {
              const at = dx + (<usize>(((b * H + ih) * W + iw) * C) << 2);
              let ci = 0;
              for (; ci < C4; ci += 4) {
                const r: usize = <usize>ci << 2;
                v128.store(at + r, f32x4.add(v128.load(at + r), v128.load(q + r)));
              }
              for (; ci < C; ci++) {
                const r: usize = <usize>ci << 2;
                store<f32>(at + r, load<f32>(at + r) + load<f32>(q + r));
              }
            }
            q += runBytes;
          }
        }
      }
    }
  }
}
