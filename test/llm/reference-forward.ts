/**
 * Test oracle: a deliberately naive float64 Llama forward written straight from the HF modeling code
 * (rotate_half RoPE, GQA, SwiGLU, RMSNorm), on a WeightSource. Used to check that our loaders hand the
 * forward pass the same function llama.cpp computes. Returns next-token logits after the last token.
 */
import { ropeInverseFrequencies, type WeightSource } from "../../src/llm/config.js";

export function referenceLogits(src: WeightSource, ids: readonly number[]): Float64Array {
  const c = src.config;
  const d = c.hiddenSize;
  const hd = c.headDim;
  const T = ids.length;
  const W = (n: string) => src.get(n);
  const matvec = (w: Float32Array, x: Float64Array, rows: number, cols: number, bias?: Float32Array) => {
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = bias ? bias[r]! : 0;
      for (let k = 0; k < cols; k++) s += w[r * cols + k]! * x[k]!;
      y[r] = s;
    }
    return y;
  };
  const rmsnorm = (x: Float64Array, g: Float32Array) => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + c.rmsNormEps);
    return x.map((v, i) => v * inv * g[i]!);
  };
  const invFreq = ropeInverseFrequencies(c, src.ropeFreqFactors());
  const rope = (v: Float64Array, heads: number, pos: number) => {
    const out = new Float64Array(v.length);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const a = v[h * hd + i]!;
        const b = v[h * hd + i + hd / 2]!;
        const ang = pos * invFreq[i]!;
        out[h * hd + i] = a * Math.cos(ang) - b * Math.sin(ang);
        out[h * hd + i + hd / 2] = b * Math.cos(ang) + a * Math.sin(ang);
      }
    }
    return out;
  };
  const emb = W("model.embed_tokens.weight");
  let xs = ids.map((id) => Float64Array.from(emb.subarray(id * d, (id + 1) * d)));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const opt = (n: string) => (src.has(n) ? W(n) : undefined);
    const [wq, wk, wv, wo] = ["q", "k", "v", "o"].map((m) => W(`${p}.self_attn.${m}_proj.weight`));
    const [bq, bk, bv] = ["q", "k", "v"].map((m) => opt(`${p}.self_attn.${m}_proj.bias`));
    const qs: Float64Array[] = [];
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = rmsnorm(xs[t]!, W(`${p}.input_layernorm.weight`));
      qs.push(rope(matvec(wq!, h, c.numHeads * hd, d, bq), c.numHeads, t));
      ks.push(rope(matvec(wk!, h, c.numKvHeads * hd, d, bk), c.numKvHeads, t));
      vs.push(matvec(wv!, h, c.numKvHeads * hd, d, bv));
    }
    const group = c.numHeads / c.numKvHeads;
    xs = xs.map((x, t) => {
      const att = new Float64Array(c.numHeads * hd);
      for (let h = 0; h < c.numHeads; h++) {
        const kh = Math.floor(h / group);
        const scores = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qs[t]![h * hd + i]! * ks[s]![kh * hd + i]!;
          scores.push(dot / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) {
          for (let i = 0; i < hd; i++) att[h * hd + i]! += (e[s]! / z) * vs[s]![kh * hd + i]!;
        }
      }
      const o = matvec(wo!, att, d, c.numHeads * hd, opt(`${p}.self_attn.o_proj.bias`));
      return x.map((v, i) => v + o[i]!);
    });
    const ff = c.intermediateSize;
    xs = xs.map((x) => {
      const h = rmsnorm(x, W(`${p}.post_attention_layernorm.weight`));
      const g = matvec(W(`${p}.mlp.gate_proj.weight`), h, ff, d);
      const u = matvec(W(`${p}.mlp.up_proj.weight`), h, ff, d);
      const act = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]!);
      const down = matvec(W(`${p}.mlp.down_proj.weight`), act, d, ff);
      return x.map((v, i) => v + down[i]!);
    });
  }
  const last = rmsnorm(xs[T - 1]!, W("model.norm.weight"));
  const head = src.has("lm_head.weight") ? W("lm_head.weight") : emb;
  return matvec(head, last, c.vocabSize, d);
}
