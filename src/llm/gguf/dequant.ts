/**
 * Conversions between ggml tensor encodings and float32. Block layouts follow ggml-quants.c
 * (dequantize_row_q8_0 / q4_0 / q4_K / q6_K); quantisers are provided only for the types we write.
 */
import { GgmlType, ggmlByteSize, ggmlTypeName } from "./types.js";

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** float32 → IEEE half, round-to-nearest-even (as numpy / ggml do). */
export function floatToHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = half >>> 10;
  return sign | half;
}

export function bf16ToFloat(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0]!;
}

/** float32 → bfloat16, round-to-nearest-even (as torch does). */
export function floatToBf16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode `count` elements of `type` from `bytes` into float32. */
export function dequantize(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const need = ggmlByteSize(type, count);
  if (bytes.byteLength < need)
    throw new Error(`${ggmlTypeName(type)}: need ${need} bytes, got ${bytes.byteLength}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  switch (type) {
    case GgmlType.F32:
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    case GgmlType.F16:
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    case GgmlType.BF16:
      for (let i = 0; i < count; i++) out[i] = bf16ToFloat(view.getUint16(i * 2, true));
      return out;
    case GgmlType.Q8_0:
      for (let b = 0; b < count / 32; b++) {
        const base = b * 34;
        const d = halfToFloat(view.getUint16(base, true));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * view.getInt8(base + 2 + j);
      }
      return out;
    case GgmlType.Q4_0:
      for (let b = 0; b < count / 32; b++) {
        const base = b * 18;
        const d = halfToFloat(view.getUint16(base, true));
        for (let j = 0; j < 16; j++) {
          const q = bytes[base + 2 + j]!;
          out[b * 32 + j] = ((q & 0xf) - 8) * d;
          out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return out;
    case GgmlType.Q4_1:
      for (let b = 0; b < count / 32; b++) {
        const base = b * 20;
        const d = halfToFloat(view.getUint16(base, true));
        const m = halfToFloat(view.getUint16(base + 2, true));
        for (let j = 0; j < 16; j++) {
          const q = bytes[base + 4 + j]!;
          out[b * 32 + j] = (q & 0xf) * d + m;
          out[b * 32 + j + 16] = (q >> 4) * d + m;
        }
      }
      return out;
    case GgmlType.Q5_0:
    case GgmlType.Q5_1:
      dequantizeQ5(type === GgmlType.Q5_1, view, bytes, count, out);
      return out;
    case GgmlType.Q4_K:
      dequantizeQ4K(bytes, view, count, out);
      return out;
    case GgmlType.Q5_K:
      dequantizeQ5K(bytes, view, count, out);
      return out;
    case GgmlType.Q6_K:
      dequantizeQ6K(bytes, view, count, out);
      return out;
    default:
      throw new Error(
        `cannot dequantise ggml type ${ggmlTypeName(type)} (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)`,
      );
  }
}

// 6-bit scale and min j of a Q4_K super-block, packed into 12 bytes.
function scaleMinK4(j: number, s: Uint8Array, at: number): [number, number] {
  if (j < 4) return [s[at + j]! & 63, s[at + j + 4]! & 63];
  return [
    (s[at + j + 4]! & 0xf) | ((s[at + j - 4]! >> 6) << 4),
    (s[at + j + 4]! >> 4) | ((s[at + j]! >> 6) << 4),
  ];
}

function dequantizeQ4K(bytes: Uint8Array, view: DataView, count: number, out: Float32Array): void {
  // block: f16 d, f16 dmin, u8 scales[12], u8 qs[128]
  for (let b = 0; b < count / 256; b++) {
    const base = b * 144;
    const d = halfToFloat(view.getUint16(base, true));
    const dmin = halfToFloat(view.getUint16(base + 2, true));
    const scales = base + 4;
    let q = base + 16;
    let y = b * 256;
    for (let j = 0, is = 0; j < 256; j += 64, is += 2) {
      const [sc1, m1] = scaleMinK4(is, bytes, scales);
      const [sc2, m2] = scaleMinK4(is + 1, bytes, scales);
      for (let l = 0; l < 32; l++) out[y + l] = d * sc1 * (bytes[q + l]! & 0xf) - dmin * m1;
      for (let l = 0; l < 32; l++) out[y + 32 + l] = d * sc2 * (bytes[q + l]! >> 4) - dmin * m2;
      q += 32;
      y += 64;
    }
  }
}

// Q5_0: f16 d, u32 qh, u8 qs[16]; Q5_1 adds an f16 min after d. Bit j of qh is the 5th bit of value j.
function dequantizeQ5(
  withMin: boolean,
  view: DataView,
  bytes: Uint8Array,
  count: number,
  out: Float32Array,
): void {
  const size = withMin ? 24 : 22;
  for (let b = 0; b < count / 32; b++) {
    const base = b * size;
    const d = halfToFloat(view.getUint16(base, true));
    const m = withMin ? halfToFloat(view.getUint16(base + 2, true)) : 0;
    const hAt = base + (withMin ? 4 : 2);
    const qh = view.getUint32(hAt, true);
    for (let j = 0; j < 16; j++) {
      const q = bytes[hAt + 4 + j]!;
      const lo = (q & 0xf) | (((qh >>> j) & 1) << 4);
      const hi = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      out[b * 32 + j] = withMin ? lo * d + m : (lo - 16) * d;
      out[b * 32 + j + 16] = withMin ? hi * d + m : (hi - 16) * d;
    }
  }
}

function dequantizeQ5K(bytes: Uint8Array, view: DataView, count: number, out: Float32Array): void {
  // block: f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]
  for (let b = 0; b < count / 256; b++) {
    const base = b * 176;
    const d = halfToFloat(view.getUint16(base, true));
    const dmin = halfToFloat(view.getUint16(base + 2, true));
    const scales = base + 4;
    const qh = base + 16;
    let ql = base + 48;
    let y = b * 256;
    for (let j = 0, is = 0, bit = 0; j < 256; j += 64, is += 2, bit += 2) {
      const [sc1, m1] = scaleMinK4(is, bytes, scales);
      const [sc2, m2] = scaleMinK4(is + 1, bytes, scales);
      for (let l = 0; l < 32; l++) {
        const h = bytes[qh + l]!;
        out[y + l] = d * sc1 * ((bytes[ql + l]! & 0xf) + (((h >> bit) & 1) << 4)) - dmin * m1;
        out[y + 32 + l] = d * sc2 * ((bytes[ql + l]! >> 4) + (((h >> (bit + 1)) & 1) << 4)) - dmin * m2;
      }
      ql += 32;
      y += 64;
    }
  }
}

function dequantizeQ6K(bytes: Uint8Array, view: DataView, count: number, out: Float32Array): void {
  // block: u8 ql[128], u8 qh[64], i8 scales[16], f16 d
  for (let b = 0; b < count / 256; b++) {
    const base = b * 210;
    const d = halfToFloat(view.getUint16(base + 208, true));
    let ql = base;
    let qh = base + 128;
    let sc = base + 192;
    let y = b * 256;
    for (let n = 0; n < 256; n += 128) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = bytes[qh + l]!;
        const q1 = ((bytes[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((bytes[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((bytes[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((bytes[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = d * view.getInt8(sc + is) * q1;
        out[y + l + 32] = d * view.getInt8(sc + is + 2) * q2;
        out[y + l + 64] = d * view.getInt8(sc + is + 4) * q3;
        out[y + l + 96] = d * view.getInt8(sc + is + 6) * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

// C's roundf (ties away from zero); Math.round ties toward +∞.
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Encode float32 values as `type` (F32, F16, BF16 or Q8_0), matching ggml's reference quantiser. */
export function quantize(type: GgmlType, values: Float32Array): Uint8Array {
  const out = new Uint8Array(ggmlByteSize(type, values.length));
  const view = new DataView(out.buffer);
  switch (type) {
    case GgmlType.F32:
      for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
      return out;
    case GgmlType.F16:
      for (let i = 0; i < values.length; i++) view.setUint16(i * 2, floatToHalf(values[i]!), true);
      return out;
    case GgmlType.BF16:
      for (let i = 0; i < values.length; i++) view.setUint16(i * 2, floatToBf16(values[i]!), true);
      return out;
    case GgmlType.Q8_0:
      for (let b = 0; b < values.length / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[b * 32 + j]!));
        const d = amax / 127;
        const id = d ? 1 / d : 0;
        view.setUint16(b * 34, floatToHalf(d), true);
        for (let j = 0; j < 32; j++) view.setInt8(b * 34 + 2 + j, roundHalfAway(values[b * 32 + j]! * id));
      }
      return out;
    default:
      throw new Error(`cannot quantise to ${ggmlTypeName(type)} (supported: F32, F16, BF16, Q8_0)`);
  }
}
