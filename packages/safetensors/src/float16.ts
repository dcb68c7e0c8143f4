/**
 * IEEE 754 binary16 and bfloat16 conversions to and from float32, bit-exact and round-to-nearest-even, the rounding
 * numpy (`astype(float16)`) and torch (`.to(torch.bfloat16)`) use, so files written here match files written there.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → binary16 bits. Overflow goes to ±Inf, underflow to ±0 (gradually through subnormals), NaN stays NaN. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  // Re-bias the exponent: binary32 bias 127, binary16 bias 15.
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // The result is a binary16 subnormal (unit 2^-24) or zero; below half the smallest subnormal it rounds to 0.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    const kept = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    // A carry out of the subnormal range gives 0x0400, the smallest normal: still the right bits.
    return sign | (rest > half || (rest === half && kept & 1) ? kept + 1 : kept);
  }
  const kept = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry propagates into the exponent (and at the top into 0x7c00 = Inf), which is what rounding demands.
  return sign | (rest > 0x1000 || (rest === 0x1000 && kept & 1) ? kept + 1 : kept);
}

let f16Table: Float32Array | undefined;

/** binary16 bits → float32 value (exact: every binary16 value is a float32 value). */
export function float16BitsToFloat32(bits: number): number {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >>> 10) & 0x1f;
      const m = h & 0x3ff;
      if (e === 0) f16Table[h] = s * m * 2 ** -24;
      else if (e === 0x1f) f16Table[h] = m ? NaN : s * Infinity;
      else f16Table[h] = s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  return f16Table[bits & 0xffff];
}

/** float32 → bfloat16 bits (the top half of the float32, rounded to nearest even; NaN stays a quiet NaN). */
export function float32ToBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits → float32 value (exact). */
export function bfloat16BitsToFloat32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}
