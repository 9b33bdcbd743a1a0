import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ggufToHfName,
  hfToGgufName,
  type LlamaConfig,
  permuteRows,
  ropeInverseFrequencies,
  unpermuteRows,
} from "../../src/llm/config.js";
import { GgufModel } from "../../src/llm/gguf/model.js";
import { HfModel, llamaConfigFromHf } from "../../src/llm/hf/model.js";
import { scratchConfig } from "../../src/llm/model/scratch.js";
import { encodeSafetensors } from "../../src/tensor/safetensors.js";
import { randomLlamaWeights, writeTinyLlama } from "../fixtures/tiny-llama.js";
import { TINY_LLAMA2_GGUF } from "./shared-model.js";

const tmp = () => mkdtempSync(join(tmpdir(), "llamarec-load-"));

describe("GGUF ⇄ HF tensor names", () => {
  it("maps every Llama tensor both ways", () => {
    const pairs: [string, string][] = [
      ["token_embd.weight", "model.embed_tokens.weight"],
      ["output_norm.weight", "model.norm.weight"],
      ["output.weight", "lm_head.weight"],
      ["blk.3.attn_norm.weight", "model.layers.3.input_layernorm.weight"],
      ["blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight"],
      ["blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias"],
      ["blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"],
      ["blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight"],
      ["blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight"],
      ["blk.12.ffn_gate.weight", "model.layers.12.mlp.gate_proj.weight"],
      ["blk.12.ffn_up.weight", "model.layers.12.mlp.up_proj.weight"],
      ["blk.12.ffn_down.weight", "model.layers.12.mlp.down_proj.weight"],
    ];
    for (const [g, h] of pairs) {
      expect(ggufToHfName(g)).toBe(h);
      expect(hfToGgufName(h)).toBe(g);
    }
    expect(ggufToHfName("rope_freqs.weight")).toBeNull();
  });
});

describe("Q/K permutation (convert_hf_to_gguf.py permute)", () => {
  it("matches the reshape(n_head, 2, d/2, …).swapaxes(1, 2) definition and inverts", () => {
    // 2 heads, headDim 4, 3 columns: HF row r holds value r*10 + col.
    const heads = 2;
    const hd = 4;
    const cols = 3;
    const hf = Float32Array.from(
      { length: heads * hd * cols },
      (_, i) => Math.floor(i / cols) * 10 + (i % cols),
    );
    const g = permuteRows(hf, heads, cols);
    // Per head, GGUF rows are HF rows [0, 2, 1, 3] (pairs i and i + d/2 interleaved).
    const order = [0, 2, 1, 3, 4, 6, 5, 7];
    for (let r = 0; r < 8; r++) {
      for (let c = 0; c < cols; c++) expect(g[r * cols + c]).toBe(order[r]! * 10 + c);
    }
    expect(Array.from(unpermuteRows(g, heads, cols))).toEqual(Array.from(hf));
    expect(() => permuteRows(new Float32Array(6), 2, 1)).toThrow(/even size/);
  });
});

describe("RoPE frequencies", () => {
  const base: LlamaConfig = scratchConfig("scratch:tiny", { size: 100, bosId: 1, eosId: 2 });
  it("default, linear and llama3 scaling", () => {
    const plain = ropeInverseFrequencies({ ...base, headDim: 8 });
    expect(Array.from(plain)).toEqual(
      Array.from(Float32Array.of(1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75)),
    );
    const linear = ropeInverseFrequencies({
      ...base,
      headDim: 8,
      ropeScaling: { type: "linear", factor: 4 },
    });
    expect(linear[1]).toBeCloseTo(plain[1]! / 4, 7);
    // Llama 3.1 values (head_dim 128, theta 500000, factor 8, low 1, high 4, original 8192).
    const l3 = ropeInverseFrequencies({
      ...base,
      headDim: 128,
      ropeTheta: 500000,
      ropeScaling: {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 8192,
      },
    });
    const raw = (i: number) => 1 / 500000 ** ((2 * i) / 128);
    expect(l3[0]).toBeCloseTo(raw(0), 7); // high frequency: unchanged
    expect(l3[63]).toBeCloseTo(raw(63) / 8, 12); // low frequency: divided by factor
    const mid = 40; // wavelength between 2048 and 8192: blended
    expect(l3[mid]!).toBeLessThan(raw(mid));
    expect(l3[mid]!).toBeGreaterThan(raw(mid) / 8);
    const divided = ropeInverseFrequencies({ ...base, headDim: 4 }, Float32Array.of(2, 4));
    expect(divided[0]).toBe(0.5);
    expect(divided[1]).toBeCloseTo(0.01 / 4, 9);
  });
});

describe("HF config.json", () => {
  it("reads llama, mistral and qwen2 fields with their defaults", () => {
    const llama = llamaConfigFromHf(
      {
        model_type: "llama",
        vocab_size: 128256,
        hidden_size: 2048,
        intermediate_size: 8192,
        num_hidden_layers: 16,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 500000,
        rope_scaling: {
          rope_type: "llama3",
          factor: 32,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 8192,
        },
        max_position_embeddings: 131072,
        tie_word_embeddings: true,
        bos_token_id: 128000,
        eos_token_id: [128001, 128008, 128009],
      },
      "llama3.json",
    );
    expect(llama).toMatchObject({
      architecture: "llama",
      headDim: 64,
      numKvHeads: 8,
      tieWordEmbeddings: true,
      attentionBias: false,
      eosTokenId: 128001,
      ropeScaling: { type: "llama3", factor: 32, originalMaxPositionEmbeddings: 8192 },
    });
    const qwen = llamaConfigFromHf(
      {
        model_type: "qwen2",
        vocab_size: 151936,
        hidden_size: 896,
        intermediate_size: 4864,
        num_hidden_layers: 24,
        num_attention_heads: 14,
        num_key_value_heads: 2,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000,
        tie_word_embeddings: true,
      },
      "qwen.json",
    );
    expect(qwen).toMatchObject({ attentionBias: true, outputBias: false, headDim: 64, ropeScaling: null });
    const mistral = llamaConfigFromHf(
      {
        model_type: "mistral",
        vocab_size: 32000,
        hidden_size: 4096,
        intermediate_size: 14336,
        num_hidden_layers: 32,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        head_dim: 128,
      },
      "m.json",
    );
    expect(mistral).toMatchObject({ architecture: "mistral", ropeTheta: 10000, tieWordEmbeddings: false });
  });

  it("names the file and field on bad input", () => {
    expect(() => llamaConfigFromHf({ model_type: "gpt2" }, "c.json")).toThrow(/c\.json: model_type "gpt2"/);
    expect(() =>
      llamaConfigFromHf({ model_type: "llama", hidden_size: 8, num_attention_heads: 2 }, "c.json"),
    ).toThrow(/c\.json: missing field vocab_size/);
    expect(() =>
      llamaConfigFromHf(
        {
          model_type: "llama",
          vocab_size: 10,
          hidden_size: "8",
          intermediate_size: 8,
          num_hidden_layers: 1,
          num_attention_heads: 2,
        },
        "c.json",
      ),
    ).toThrow(/field hidden_size must be a number/);
  });
});

describe("GGUF and HF loaders give identical weights", () => {
  it("tiny model written both ways (Q/K un-permuted from GGUF)", async () => {
    const paths = await writeTinyLlama(tmp(), { seed: 3 });
    const g = GgufModel.open(paths.gguf);
    const h = HfModel.open(paths.hfDir);
    try {
      expect(g.config).toEqual(h.config);
      expect(g.names().sort()).toEqual(h.names().sort());
      for (const n of h.names()) {
        expect(g.shape(n), n).toEqual(h.shape(n));
        expect(Buffer.from(g.get(n).buffer).equals(Buffer.from(h.get(n).buffer)), n).toBe(true);
      }
      // The raw GGUF q rows really are permuted: reading them unconverted differs.
      const rawQ = g.file.readTensor("blk.0.attn_q.weight");
      expect(Array.from(rawQ)).not.toEqual(Array.from(h.get("model.layers.0.self_attn.q_proj.weight")));
      expect(g.dtype("model.embed_tokens.weight")).toBe("F32");
      expect(h.dtype("model.embed_tokens.weight")).toBe("F32");
    } finally {
      g.close();
      h.close();
    }
  });

  it("reads sharded model.safetensors.index.json folders", async () => {
    const dir = tmp();
    const paths = await writeTinyLlama(dir, { seed: 4 });
    const config = scratchConfig("scratch:tiny", { size: paths.config.vocabSize, bosId: 1, eosId: 2 });
    const weights = randomLlamaWeights(config, 4);
    const shardDir = join(dir, "sharded");
    const names = [...weights.keys()];
    const half = Math.floor(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((ns, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      for (const n of ns) weightMap[n] = file;
      writeFileSync(join(dir, "hf", file), encodeSafetensors(new Map(ns.map((n) => [n, weights.get(n)!]))));
    });
    writeFileSync(
      join(dir, "hf", "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    // Point a folder at the shards only.
    const { cpSync, rmSync } = await import("node:fs");
    cpSync(join(dir, "hf"), shardDir, { recursive: true });
    rmSync(join(shardDir, "model.safetensors"));
    const sharded = HfModel.open(shardDir);
    const single = HfModel.open(paths.hfDir);
    try {
      expect(sharded.names().sort()).toEqual(single.names().sort());
      for (const n of names) expect(Array.from(sharded.get(n))).toEqual(Array.from(single.get(n)));
    } finally {
      sharded.close();
      single.close();
    }
    expect(() => HfModel.open(join(dir, "nowhere"))).toThrow(/no config\.json/);
  });

  it("reads the bundled GGUF's config", () => {
    const g = GgufModel.open(TINY_LLAMA2_GGUF);
    try {
      expect(g.config).toMatchObject({
        architecture: "llama",
        vocabSize: 32000,
        hiddenSize: 8,
        intermediateSize: 32,
        numLayers: 1,
        numHeads: 2,
        numKvHeads: 2,
        headDim: 4,
        tieWordEmbeddings: false,
        bosTokenId: 1,
        eosTokenId: 2,
      });
      expect(g.shape("model.layers.0.mlp.down_proj.weight")).toEqual([8, 32]);
      expect(g.dtype("model.layers.0.mlp.down_proj.weight")).toBe("F16");
    } finally {
      g.close();
    }
  });
});

describe("lazy safetensors reader", () => {
  it("decodes F32, F16 and BF16 tensors and rejects bad headers", async () => {
    const { LazySafetensors } = await import("../../src/llm/hf/safetensors-lazy.js");
    const { floatToBf16, floatToHalf } = await import("../../src/llm/gguf/dequant.js");
    const values = [1.5, -2, 0.25, 1024];
    const f32 = Buffer.alloc(16);
    const f16 = Buffer.alloc(8);
    const bf16 = Buffer.alloc(8);
    values.forEach((v, i) => {
      f32.writeFloatLE(v, i * 4);
      f16.writeUInt16LE(floatToHalf(v), i * 2);
      bf16.writeUInt16LE(floatToBf16(v), i * 2);
    });
    const header = JSON.stringify({
      __metadata__: { format: "pt" },
      a: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
      b: { dtype: "F16", shape: [4], data_offsets: [16, 24] },
      c: { dtype: "BF16", shape: [1, 4], data_offsets: [24, 32] },
      d: { dtype: "I64", shape: [1], data_offsets: [32, 40] },
    });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const dir = tmp();
    const path = join(dir, "x.safetensors");
    writeFileSync(path, Buffer.concat([len, Buffer.from(header), f32, f16, bf16, Buffer.alloc(8)]));
    const st = LazySafetensors.open(path);
    try {
      for (const n of ["a", "b", "c"]) expect(Array.from(st.read(n)), n).toEqual(values);
      expect(st.metadata).toEqual({ format: "pt" });
      expect(() => st.read("d")).toThrow(/dtype I64/);
      expect(() => st.read("zz")).toThrow(/no tensor zz/);
    } finally {
      st.close();
    }
    writeFileSync(join(dir, "bad.safetensors"), Buffer.concat([len, Buffer.from("{not json")]));
    expect(() => LazySafetensors.open(join(dir, "bad.safetensors"))).toThrow(/header length|not JSON/);
  });
});
