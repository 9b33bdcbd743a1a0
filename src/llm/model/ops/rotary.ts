/**
 * Rotary position embedding in the HF "rotate half" layout: within each head the pair (x[i], x[i + d/2])
 * is rotated by pos·invFreq[i]. GGUF llama files store Q/K rows permuted for llama.cpp's interleaved
 * layout; the GGUF loader (src/llm/gguf/model.ts) undoes that, so the model only ever sees this layout.
 * Inverse frequencies come from src/llm/config.ts ropeInverseFrequencies (rope_scaling, rope_freqs).
 */

import { needsGrad, record } from "../../../tensor/tape.js";
import { Tensor } from "../../../tensor/tensor.js";

/** cos/sin of pos·invFreq for positions [0, length), grown on demand and shared by all layers. */
export class RopeTable {
  private cosData = new Float32Array(0);
  private sinData = new Float32Array(0);
  private length = 0;
  readonly half: number;

  constructor(readonly invFreq: ArrayLike<number>) {
    this.half = invFreq.length;
  }

  /** Tables covering positions [0, n): row p holds cos/sin for frequencies 0..half−1. */
  tables(n: number): { cos: Float32Array; sin: Float32Array } {
    if (n > this.length) {
      const len = Math.max(n, this.length * 2);
      const half = this.half;
      const cos = new Float32Array(len * half);
      const sin = new Float32Array(len * half);
      for (let p = 0; p < len; p++) {
        for (let i = 0; i < half; i++) {
          // Angle in float64 from the float32 frequency: exact up to the final rounding.
          const a = p * this.invFreq[i]!;
          cos[p * half + i] = Math.cos(a);
          sin[p * half + i] = Math.sin(a);
        }
      }
      this.cosData = cos;
      this.sinData = sin;
      this.length = len;
    }
    return { cos: this.cosData, sin: this.sinData };
  }
}

/**
 * Rotates x [..., T, heads·headDim] (token t at position positionOffset + t) head by head. The backward
 * is the inverse rotation.
 */
export function rotary(x: Tensor, heads: number, table: RopeTable, positionOffset = 0): Tensor {
  const width = x.dim(-1);
  const half = table.half;
  const headDim = 2 * half;
  if (width !== heads * headDim)
    throw new RangeError(`rotary: last dim ${width} ≠ ${heads} heads × ${headDim}`);
  const T = x.rank >= 2 ? x.dim(-2) : 1;
  const rows = x.size / width;
  const { cos, sin } = table.tables(positionOffset + T);
  const xd = x.data;
  const out = new Float32Array(x.size);
  for (let r = 0; r < rows; r++) {
    const p = positionOffset + (r % T);
    const c0 = p * half;
    for (let h = 0; h < heads; h++) {
      const o = r * width + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[c0 + i]!;
        const s = sin[c0 + i]!;
        const a = xd[o + i]!;
        const b = xd[o + half + i]!;
        out[o + i] = a * c - b * s;
        out[o + half + i] = b * c + a * s;
      }
    }
  }
  const t = new Tensor(out, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      for (let r = 0; r < rows; r++) {
        const c0 = (positionOffset + (r % T)) * half;
        for (let h = 0; h < heads; h++) {
          const o = r * width + h * headDim;
          for (let i = 0; i < half; i++) {
            const c = cos[c0 + i]!;
            const s = sin[c0 + i]!;
            const ga = g[o + i]!;
            const gb = g[o + half + i]!;
            gx[o + i] = gx[o + i]! + ga * c + gb * s;
            gx[o + half + i] = gx[o + half + i]! + gb * c - ga * s;
          }
        }
      }
    });
  }
  return t;
}
