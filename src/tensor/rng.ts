import { erf, erfinv } from "./special.js";

/**
 * Seeded pseudo-random numbers: xoshiro128** (32-bit state words, fast in JS) seeded through splitmix32.
 * Same seed → same stream on every platform; the stream differs from torch's, so runs are reproducible
 * within this project, not bit-identical to PyTorch.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be a finite number, got ${seed}`);
    let z = (Math.trunc(seed) ^ Math.trunc(seed / 2 ** 32)) >>> 0;
    const next = (): number => {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
      return (t ^ (t >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /**
   * Inverted dropout in one pass: dst[i] (=|+=) src[i]/(1−p) with probability 1−p, else 0 (or unchanged
   * when accumulating). Each 32-bit draw serves two elements (16 bits each), so the drop probability is p
   * rounded to a multiple of 2⁻¹⁶ (0.2 → 0.199997); the survivors' scale is exactly 1/(1−p), as torch.
   * Consumes ceil(n/2) nextUint32 draws, so replaying from a saved state reproduces the mask.
   */
  applyDropout(src: Float32Array, dst: Float32Array, p: number, accumulate: boolean): void {
    const threshold = Math.round(p * 65536);
    const scale = 1 / (1 - p);
    const n = src.length;
    const pairs = n >> 1;
    // The generator runs on locals (xoshiro128**, same stream as nextUint32); one loop per mode keeps
    // the hot loop branch-free.
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    for (let k = 0; k < pairs; k++) {
      const m = Math.imul(s1, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      const i = 2 * k;
      const v0 = (r & 0xffff) >= threshold ? src[i]! * scale : 0;
      const v1 = r >>> 16 >= threshold ? src[i + 1]! * scale : 0;
      if (accumulate) {
        dst[i] = dst[i]! + v0;
        dst[i + 1] = dst[i + 1]! + v1;
      } else {
        dst[i] = v0;
        dst[i + 1] = v1;
      }
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    if (n & 1) {
      const i = n - 1;
      const v = (this.nextUint32() & 0xffff) >= threshold ? src[i]! * scale : 0;
      dst[i] = accumulate ? dst[i]! + v : v;
    }
  }

  /**
   * dst[i] = dropout(src)[i] + addend[i] in one pass, with exactly the draws and rounding of applyDropout
   * followed by an add (the dropped/scaled value is rounded to float32 before the add): the fused
   * dropout + residual of a block.
   */
  applyDropoutAdd(src: Float32Array, addend: Float32Array, dst: Float32Array, p: number): void {
    const threshold = Math.round(p * 65536);
    const scale = 1 / (1 - p);
    const n = src.length;
    const pairs = n >> 1;
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    for (let k = 0; k < pairs; k++) {
      const m = Math.imul(s1, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      const i = 2 * k;
      dst[i] = ((r & 0xffff) >= threshold ? Math.fround(src[i]! * scale) : 0) + addend[i]!;
      dst[i + 1] = (r >>> 16 >= threshold ? Math.fround(src[i + 1]! * scale) : 0) + addend[i + 1]!;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    if (n & 1) {
      const i = n - 1;
      dst[i] = ((this.nextUint32() & 0xffff) >= threshold ? Math.fround(src[i]! * scale) : 0) + addend[i]!;
    }
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniformIn(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller, both values used). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * Normal(mean, std) truncated to [lo, hi] by inverse-CDF sampling, exactly the official LRURec init:
   * u ~ U(2·Φ(lo)−1, 2·Φ(hi)−1), x = erfinv(u)·std·√2 + mean.
   */
  truncatedNormal(std: number, lo: number, hi: number, mean = 0): number {
    const l = (1 + erf((lo - mean) / std / Math.SQRT2)) / 2;
    const u = (1 + erf((hi - mean) / std / Math.SQRT2)) / 2;
    const x = erfinv(this.uniformIn(2 * l - 1, 2 * u - 1)) * std * Math.SQRT2 + mean;
    return Math.min(hi, Math.max(lo, x));
  }

  /** Fills `out` with truncated-normal draws (see truncatedNormal). */
  fillTruncatedNormal(out: Float32Array, std: number, lo: number, hi: number, mean = 0): Float32Array {
    const l = (1 + erf((lo - mean) / std / Math.SQRT2)) / 2;
    const u = (1 + erf((hi - mean) / std / Math.SQRT2)) / 2;
    for (let i = 0; i < out.length; i++) {
      const x = erfinv(this.uniformIn(2 * l - 1, 2 * u - 1)) * std * Math.SQRT2 + mean;
      out[i] = Math.min(hi, Math.max(lo, x));
    }
    return out;
  }

  /** An independent generator derived from this one (for per-module streams). */
  fork(): Rng {
    return new Rng(this.nextUint32() * 4294967296 + this.nextUint32());
  }

  /** The full state, for checkpointing. */
  getState(): number[] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4) throw new RangeError(`Rng state must have 4 words, got ${state.length}`);
    [this.s0, this.s1, this.s2, this.s3] = state.map((v) => v >>> 0) as [number, number, number, number];
    this.spareNormal = null;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
