import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { llamaConfigFromGguf } from "../../../src/llm/gguf/model.js";
import { GgufFile } from "../../../src/llm/gguf/reader.js";
import { gguf, writeGguf } from "../../../src/llm/gguf/writer.js";
import { llamaGgufMetadata, llamaGgufTensors, writeLlamaGguf } from "../../../src/llm/model/gguf-export.js";
import { LlamaForCausalLM } from "../../../src/llm/model/llama.js";
import { loadLlama } from "../../../src/llm/model/load.js";
import { gradCheck } from "../../../src/tensor/gradcheck.js";
import { linearCrossEntropy } from "../../../src/tensor/ops/cross_entropy.js";
import { backward, noGrad } from "../../../src/tensor/tape.js";
import { randomLlama, syntheticSpmVocab, tinyLlamaConfig } from "../../fixtures/synthetic-llama.js";
import { writeTinyLlama } from "../../fixtures/tiny-llama.js";
import { maxAbsDiff, Rng } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-model-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ids = Int32Array.from({ length: 40 }, (_, i) => (i * 7 + 1) % 64);

describe("LlamaForCausalLM", () => {
  const config = tinyLlamaConfig({ vocabSize: 64, hiddenSize: 32, intermediateSize: 48, headDim: 8 });
  const model = randomLlama(config, 1);

  it("names parameters as HF and freezes them by default", () => {
    const names = model.namedParameters().map(([n]) => n);
    expect(names).toContain("model.embed_tokens.weight");
    expect(names).toContain("model.layers.1.self_attn.k_proj.weight");
    expect(names).toContain("model.layers.0.mlp.down_proj.weight");
    expect(names).toContain("model.norm.weight");
    expect(names).toContain("lm_head.weight");
    expect(model.parameters().every((p) => !p.requiresGrad)).toBe(true);
    const tied = new LlamaForCausalLM({ ...config, tieWordEmbeddings: true });
    expect(tied.namedParameters().map(([n]) => n)).not.toContain("lm_head.weight");
    expect(tied.outputWeight).toBe(tied.model.embed_tokens);
  });

  it("lastLogits equals the last row of the full forward pass", () => {
    const full = noGrad(() => model.logits(model.hidden(ids)));
    const last = model.lastLogits(ids);
    expect(full.shape).toEqual([ids.length, 64]);
    expect(maxAbsDiff(last, full.data.slice((ids.length - 1) * 64))).toBeLessThan(1e-5);
  });

  it("lastRows k gives the last k rows of the full hidden states", () => {
    const full = noGrad(() => model.hidden(ids));
    const last3 = noGrad(() => model.hidden(ids, { lastRows: 3 }));
    expect(last3.shape).toEqual([3, 32]);
    expect(maxAbsDiff(last3.data, full.data.slice((ids.length - 3) * 32))).toBeLessThan(1e-5);
  });

  it("is causal: a prefix's logits do not depend on later tokens", () => {
    const prefix = model.lastLogits(ids.slice(0, 10));
    const full = noGrad(() => model.logits(model.hidden(ids)));
    expect(maxAbsDiff(prefix, full.data.slice(9 * 64, 10 * 64))).toBeLessThan(1e-5);
  });

  it("rejects token ids outside the vocabulary and empty inputs, naming the position", () => {
    expect(() => model.lastLogits(Int32Array.of(1, 64))).toThrow(/token id 64 at position 1/);
    expect(() => model.lastLogits(new Int32Array(0))).toThrow(/empty/);
  });

  it("validates its config", () => {
    expect(() => new LlamaForCausalLM({ ...config, numKvHeads: 3 })).toThrow(/numKvHeads/);
    expect(() => new LlamaForCausalLM({ ...config, headDim: 7 })).toThrow(/even/);
  });

  it("LoRA gradients through the whole model match finite differences", () => {
    const m = randomLlama({ ...config, numLayers: 2 }, 2);
    const lora = m.attachLora(
      { r: 2, alpha: 4, dropout: 0, targetModules: ["q_proj", "v_proj"] },
      new Rng(3),
    );
    const rng = new Rng(4);
    for (const a of lora.adapters.values())
      for (let i = 0; i < a.B.size; i++) a.B.data[i] = 0.3 * rng.normal();
    const q0 = lora.adapters.get("model.layers.0.self_attn.q_proj")!;
    const v1 = lora.adapters.get("model.layers.1.self_attn.v_proj")!;
    const labels = Int32Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? (i * 5) % 64 : -100));
    const short = ids.slice(0, 12);
    const r = gradCheck(
      () => linearCrossEntropy(m.hidden(short), m.outputWeight, null, labels),
      [q0.A, q0.B, v1.B],
      {
        maxPerInput: 12,
        eps: 1e-2,
      },
    );
    expect(r.mismatches).toEqual([]);
  });

  it("full fine-tuning gradients of every weight match finite differences (qwen2: biases, tied head)", () => {
    const c = tinyLlamaConfig({
      architecture: "qwen2",
      vocabSize: 20,
      hiddenSize: 8,
      intermediateSize: 12,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
      headDim: 4,
      attentionBias: true,
      tieWordEmbeddings: true,
    });
    const m = randomLlama(c, 9, 0.5);
    m.setBaseTrainable(true);
    const seq = Int32Array.of(1, 5, 7, 5, 19, 3);
    const labels = Int32Array.of(5, 7, 5, 19, 3, 2);
    const params = m.parameters();
    expect(params.length).toBe(14); // embedding, 12 in the layer (q/k/v biases), final norm
    const r = gradCheck(() => linearCrossEntropy(m.hidden(seq), m.outputWeight, null, labels), params, {
      maxPerInput: 8,
      eps: 1e-2,
    });
    expect(r.mismatches).toEqual([]);
    expect(r.checked).toBeGreaterThan(60);
  });

  it("checkpointed layers give the same loss and LoRA gradients (dropout masks replayed)", () => {
    const run = (checkpoint: boolean) => {
      const m = randomLlama(config, 6);
      const lora = m.attachLora(
        { r: 4, alpha: 8, dropout: 0.3, targetModules: ["q_proj", "v_proj", "down_proj"] },
        new Rng(7),
      );
      const rng = new Rng(8);
      for (const a of lora.adapters.values())
        for (let i = 0; i < a.B.size; i++) a.B.data[i] = 0.3 * rng.normal();
      m.train();
      const labels = Int32Array.from(ids, (id, i) => (i > 30 ? id : -100));
      const loss = linearCrossEntropy(m.hidden(ids, { checkpoint }), m.outputWeight, null, labels);
      backward(loss);
      return { loss: loss.item(), grads: m.loraParameters().map(([, p]) => p.grad!) };
    };
    const plain = run(false);
    const ckpt = run(true);
    expect(ckpt.loss).toBe(plain.loss);
    expect(ckpt.grads.length).toBe(12);
    ckpt.grads.forEach((g, i) => {
      expect(maxAbsDiff(g, plain.grads[i]!)).toBeLessThan(1e-6);
    });
    expect(Math.max(...plain.grads[1]!.map(Math.abs))).toBeGreaterThan(1e-4);
  });
});

describe("GGUF layout", () => {
  it("a model written as GGUF loads back with the same config and identical logits", () => {
    for (const config of [
      tinyLlamaConfig({ vocabSize: 320 }),
      tinyLlamaConfig({
        vocabSize: 320,
        architecture: "qwen2",
        attentionBias: true,
        tieWordEmbeddings: true,
      }),
    ]) {
      const model = randomLlama(config, 5);
      const path = join(dir, `${config.architecture}.gguf`);
      writeLlamaGguf(path, model, { tokenizer: syntheticSpmVocab(config.vocabSize) });
      const file = GgufFile.open(path);
      const read = llamaConfigFromGguf(file);
      file.close();
      expect(read).toEqual(config);
      const back = loadLlama(path);
      expect(maxAbsDiff(back.lastLogits(ids), model.lastLogits(ids))).toBe(0);
      // The Q rows on disk are permuted for llama (interleaved rope), not for qwen2.
      const f2 = GgufFile.open(path);
      const onDisk = f2.readTensor("blk.0.attn_q.weight");
      f2.close();
      const q = model.model.layers[0]!.self_attn.q_proj.weight.data;
      expect(maxAbsDiff(onDisk, q) === 0).toBe(config.architecture === "qwen2");
    }
  });

  it("loads the same model from GGUF and from an HF folder (Q/K un-permuted)", async () => {
    const paths = await writeTinyLlama(join(dir, "tiny"), { seed: 4, std: 0.2 });
    const fromGguf = loadLlama(paths.gguf);
    const fromHf = loadLlama(paths.hfDir);
    const prompt = Int32Array.from({ length: 25 }, (_, i) => 1 + ((i * 13) % 200));
    const a = fromGguf.lastLogits(prompt);
    expect(maxAbsDiff(a, fromHf.lastLogits(prompt))).toBe(0);
    expect(Math.max(...a) - Math.min(...a)).toBeGreaterThan(0.1);
  });

  it("names what is wrong in a malformed file", () => {
    const model = randomLlama(tinyLlamaConfig({ vocabSize: 320 }), 1);
    const options = { tokenizer: syntheticSpmVocab(320) };
    const meta = llamaGgufMetadata(model, options);
    const tensors = llamaGgufTensors(model, options);
    const unknownArch = join(dir, "gpt2.gguf");
    writeGguf(unknownArch, new Map([...meta, ["general.architecture", gguf.str("gpt2")]]), tensors);
    expect(() => loadLlama(unknownArch)).toThrow(/"gpt2" is not supported/);
    const missing = join(dir, "missing-tensor.gguf");
    writeGguf(
      missing,
      meta,
      tensors.filter((t) => t.name !== "blk.1.ffn_up.weight"),
    );
    expect(() => loadLlama(missing)).toThrow(/missing weight model\.layers\.1\.mlp\.up_proj\.weight/);
    expect(() => loadLlama(join(dir, "absent.gguf"))).toThrow(/cannot open/);
  });
});
