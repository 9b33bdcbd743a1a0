/**
 * Scores every item of a catalogue for one user vector: scores[i] = bias[i] + E[i]·h. This is the
 * retrieval step of serving (LRURec scores = last hidden · item embeddingᵀ + item bias), and at catalogue
 * scale it is the whole cost: 1,000,000 items × d 64 is 256 MB of float32 read per request.
 *
 * The item table is copied once into the memory of a small WebAssembly SIMD kernel
 * (catalogue-scorer-build.ts), which then reads it in place for every request: the general GEMM kernels copy
 * their operands into the wasm heap on every call, which at this size costs more than the arithmetic.
 * Without WebAssembly SIMD the same loop runs in JavaScript. Summation order differs from the GEMM's, so
 * scores agree with `scoreNext` to float rounding (~1e-6 relative), not bit for bit.
 */
import { type WasmModule, WebAssemblyApi } from "../tensor/kernels/wasm-api.js";
import { SCORER_WASM_BASE64 } from "./catalogue-scorer-wasm.generated.js";

const PAGE = 65536;

interface ScorerExports {
  scoreRows(E: number, bias: number, x: number, out: number, n: number, d: number): void;
}

export class CatalogueScorer {
  /** Rows scored (items + the padding row 0). */
  readonly rows: number;
  /** Width of the user vector. */
  readonly dim: number;
  readonly backend: "wasm-simd" | "js";
  private readonly run: (hidden: Float32Array) => Float32Array;

  /**
   * @param table [rows × dim] row-major item vectors (copied)
   * @param bias [rows] (copied); zeros when null
   */
  constructor(table: Float32Array, bias: Float32Array | null, rows: number, dim: number) {
    if (table.length !== rows * dim)
      throw new RangeError(`scorer: table of ${table.length} for ${rows}×${dim}`);
    if (bias && bias.length !== rows) throw new RangeError(`scorer: bias of ${bias.length} for ${rows} rows`);
    this.rows = rows;
    this.dim = dim;
    const wasm = CatalogueScorer.tryWasm(table, bias, rows, dim);
    if (wasm) {
      this.backend = "wasm-simd";
      this.run = wasm;
    } else {
      this.backend = "js";
      const E = table.slice();
      const b = bias ? bias.slice() : new Float32Array(rows);
      const out = new Float32Array(rows);
      this.run = (h) => {
        for (let i = 0, o = 0; i < rows; i++, o += dim) {
          let a = 0;
          for (let k = 0; k < dim; k++) a += E[o + k]! * h[k]!;
          out[i] = b[i]! + a;
        }
        return out;
      };
    }
  }

  private static tryWasm(
    table: Float32Array,
    bias: Float32Array | null,
    rows: number,
    dim: number,
  ): ((hidden: Float32Array) => Float32Array) | null {
    let module: WasmModule;
    try {
      module = new WebAssemblyApi.Module(Buffer.from(SCORER_WASM_BASE64, "base64"));
    } catch {
      return null; // no WebAssembly SIMD in this runtime
    }
    const width = Math.ceil(dim / 4) * 4; // rows padded with zeros to whole SIMD lanes
    const align = (n: number) => Math.ceil(n / 16) * 16;
    const eOff = PAGE;
    const bOff = align(eOff + rows * width * 4);
    const xOff = align(bOff + rows * 4);
    const outOff = align(xOff + width * 4);
    const end = outOff + rows * 4;
    const pages = Math.ceil(end / PAGE) + 1;
    if (pages > 65536) return null; // over 4 GiB: wasm32 cannot address it
    const memory = new WebAssemblyApi.Memory({ initial: pages, maximum: pages, shared: false });
    const instance = new WebAssemblyApi.Instance(module, { env: { memory } });
    const ex = instance.exports as unknown as ScorerExports;
    const E = new Float32Array(memory.buffer, eOff, rows * width);
    if (width === dim) E.set(table);
    else for (let i = 0; i < rows; i++) E.set(table.subarray(i * dim, (i + 1) * dim), i * width);
    if (bias) new Float32Array(memory.buffer, bOff, rows).set(bias);
    const x = new Float32Array(memory.buffer, xOff, width);
    const out = new Float32Array(memory.buffer, outOff, rows);
    return (h) => {
      x.set(h);
      ex.scoreRows(eOff, bOff, xOff, outOff, rows, width);
      return out;
    };
  }

  /**
   * Scores of every row for the user vector `hidden` [dim]. The result is the scorer's own buffer,
   * overwritten by the next call: read it (or copy it) before scoring again.
   */
  score(hidden: Float32Array): Float32Array {
    if (hidden.length !== this.dim)
      throw new RangeError(`scorer: vector of ${hidden.length}, expected ${this.dim}`);
    return this.run(hidden);
  }
}
