import type * as tf from '@tensorflow/tfjs';
import { FUSED_ADAM, SbmError } from '@sbm/core';
import { ptr, simdFor } from './simd';
import { type KernelArgs, f32 } from './wasm';

export { FUSED_ADAM };

const fr = Math.fround;

/**
 * The inputs `<prefix>0 … <prefix>{count−1}` for every prefix, checked: present, float32, and of one shape per index
 * (the shape of the first prefix's tensor). Throws before anything is allocated, so a bad call leaks nothing.
 */
export function groupedInputs(
  kernel: string,
  inputs: Record<string, tf.TensorInfo | undefined>,
  prefixes: readonly string[],
  count: unknown,
): tf.TensorInfo[][] {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
    throw new SbmError('INVALID_ARGUMENT', `${kernel}: attrs.count must be a positive integer, got ${String(count)}`, {
      argument: 'count',
      received: count,
    });
  }
  const out: tf.TensorInfo[][] = [];
  for (let i = 0; i < count; i++) {
    const row: tf.TensorInfo[] = [];
    for (const prefix of prefixes) {
      const t = inputs[`${prefix}${i}`];
      if (t === undefined) {
        throw new SbmError('INVALID_ARGUMENT', `${kernel}: input ${prefix}${i} is missing (count ${count})`, {
          argument: `${prefix}${i}`,
        });
      }
      if (t.dtype !== 'float32') {
        throw new SbmError('UNSUPPORTED', `${kernel}: input ${prefix}${i} must be float32, got ${t.dtype}`, {
          argument: `${prefix}${i}`,
        });
      }
      if (row.length > 0 && t.shape.join() !== row[0].shape.join()) {
        throw new SbmError(
          'INVALID_SHAPE',
          `${kernel}: input ${prefix}${i} must have the shape of ${prefixes[0]}${i} [${row[0].shape.join(', ')}], ` +
            `got [${t.shape.join(', ')}]`,
          { argument: `${prefix}${i}`, expected: row[0].shape, received: t.shape },
        );
      }
      row.push(t);
    }
    out.push(row);
  }
  return out;
}

function scalarInput(inputs: Record<string, tf.TensorInfo | undefined>, name: string, dtype: tf.DataType) {
  const t = inputs[name];
  if (t !== undefined && (t.dtype !== dtype || t.shape.reduce((a, b) => a * b, 1) !== 1)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${FUSED_ADAM}: input ${name} must be a ${dtype} scalar, got ${t.dtype} [${t.shape.join(', ')}]`,
      { argument: name },
    );
  }
  return t;
}

function numberAttr(attrs: Record<string, unknown>, name: string): number {
  const x = attrs[name];
  if (typeof x !== 'number' || !Number.isFinite(x)) {
    throw new SbmError('INVALID_ARGUMENT', `${FUSED_ADAM}: attrs.${name} must be a finite number, got ${String(x)}`, {
      argument: name,
    });
  }
  return x;
}

/**
 * Adam (Kingma & Ba 2015, Algorithm 1, torch.optim.Adam without weight decay) for every weight in one kernel call
 * (inputs and attrs: FUSED_ADAM in @sbm/core). @sbm/training's composite form costs ~14 kernel calls per weight on
 * wasm, among them a Tile of the `apply` flag to the weight's shape for each of its three `where`s — measured at
 * 450–840 ms per ScoreNet update (39 weights, 1.1 M values), more than the convolutions' gradients.
 *
 * Bit-identical to the composite on wasm: each value goes through the same float32 operations in the same order
 * (g·s; β1·m + (1−β1)·g; β2·v + (1−β2)·g²; √v′ / √(1−β2ᵗ) + ε; p − (m′ / denom)·stepSize), every scalar rounded to
 * float32 as the composite's scalar tensors are, and every step rounded with Math.fround. A float64 result of one
 * +, −, ×, ÷ or √ of float32 operands rounds to the correctly rounded float32 result (53 ≥ 2·24 + 2 bits), and the
 * wasm backend's elementwise kernels are plain IEEE float32 (wasm SIMD has no FMA), so both agree bit for bit.
 * With `apply` false the outputs are copies of the inputs, as `where(apply, next, old)` gives.
 */
export function adamKernel({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo[] {
  const groups = groupedInputs(FUSED_ADAM, inputs, ['p', 'g', 'm', 'v'], attrs.count);
  const scaleT = scalarInput(inputs, 'scale', 'float32');
  const applyT = scalarInput(inputs, 'apply', 'bool');
  const b1 = fr(numberAttr(attrs, 'beta1'));
  const c1 = fr(1 - numberAttr(attrs, 'beta1'));
  const b2 = fr(numberAttr(attrs, 'beta2'));
  const c2 = fr(1 - numberAttr(attrs, 'beta2'));
  const eps = fr(numberAttr(attrs, 'eps'));
  const stepSize = fr(numberAttr(attrs, 'stepSize'));
  const sqrtBc2 = fr(numberAttr(attrs, 'sqrtBc2'));
  const scaleAttr = scaleT === undefined ? fr(numberAttr(attrs, 'scale')) : 0;
  const n = groups.length;
  const outs: tf.TensorInfo[] = new Array<tf.TensorInfo>(3 * n);
  for (let i = 0; i < n; i++) {
    const shape = groups[i][0].shape;
    outs[i] = backend.makeOutput(shape, 'float32');
    outs[n + i] = backend.makeOutput(shape, 'float32');
    outs[2 * n + i] = backend.makeOutput(shape, 'float32');
  }
  // Heap views only after the last allocation (makeOutput may grow the heap and detach earlier views).
  const scale = scaleT === undefined ? scaleAttr : f32(backend, scaleT)[0];
  const apply = applyT === undefined ? true : backend.typedArrayFromHeap(applyT)[0] !== 0;
  const simd = apply ? simdFor(backend) : null;
  if (simd) {
    // The loop below, four lanes at a time (float32 SIMD lanes round as Math.fround does: the same bits).
    const at = (t: tf.TensorInfo) => ptr(backend, t);
    for (let i = 0; i < n; i++) {
      const [pi, gi, mi, vi] = groups[i];
      const size = f32(backend, pi).length;
      if (size === 0) continue;
      simd.adamUpdate(
        at(pi),
        at(gi),
        at(mi),
        at(vi),
        at(outs[i]),
        at(outs[n + i]),
        at(outs[2 * n + i]),
        size,
        scale,
        b1,
        c1,
        b2,
        c2,
        eps,
        stepSize,
        sqrtBc2,
      );
    }
    return outs;
  }
  for (let i = 0; i < n; i++) {
    const [pi, gi, mi, vi] = groups[i];
    const p = f32(backend, pi);
    const g = f32(backend, gi);
    const m = f32(backend, mi);
    const v = f32(backend, vi);
    const po = f32(backend, outs[i]);
    const mo = f32(backend, outs[n + i]);
    const vo = f32(backend, outs[2 * n + i]);
    if (!apply) {
      po.set(p);
      mo.set(m);
      vo.set(v);
      continue;
    }
    for (let j = 0; j < p.length; j++) {
      // x·1 is exact, so always scaling matches the composite's skipped multiply when the scale is 1.
      const gj = fr(g[j] * scale);
      const mj = fr(fr(m[j] * b1) + fr(gj * c1));
      const vj = fr(fr(v[j] * b2) + fr(fr(gj * gj) * c2));
      const denom = fr(fr(fr(Math.sqrt(vj)) / sqrtBc2) + eps);
      mo[j] = mj;
      vo[j] = vj;
      po[j] = p[j] - fr(fr(mj / denom) * stepSize);
    }
  }
  return outs;
}
