import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GgufFile } from "../../../src/llm/gguf/reader.js";
import { LoraAdapter, loraRandomState, setLoraRandomState } from "../../../src/llm/lora/adapter.js";
import { LLAMAREC_LORA, loraScaling } from "../../../src/llm/lora/config.js";
import { exportLoraGguf, importLoraGguf } from "../../../src/llm/lora/gguf.js";
import { attachLoraFromPath } from "../../../src/llm/lora/load.js";
import { exportPeft, importPeft, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from "../../../src/llm/lora/peft.js";
import { writeLlamaGguf } from "../../../src/llm/model/gguf-export.js";
import { loadLlama } from "../../../src/llm/model/load.js";
import { gradCheck } from "../../../src/tensor/gradcheck.js";
import { add, mul } from "../../../src/tensor/ops/elementwise.js";
import { linear } from "../../../src/tensor/ops/matmul.js";
import { sumAll } from "../../../src/tensor/ops/reduce.js";
import { loadSafetensors, saveSafetensors } from "../../../src/tensor/safetensors.js";
import { backward, noGrad } from "../../../src/tensor/tape.js";
import { Tensor } from "../../../src/tensor/tensor.js";
import { randomLlama, syntheticSpmVocab, tinyLlamaConfig } from "../../fixtures/synthetic-llama.js";
import { maxAbsDiff, Rng, randn } from "../model/helpers.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-lora-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ids = Int32Array.from({ length: 30 }, (_, i) => (i * 11 + 1) % 64);
const config = tinyLlamaConfig({ vocabSize: 320 });

/** A model with adapters whose B is random (a fresh adapter has B = 0 and changes nothing). */
function adaptedModel(seed: number, targets = ["q_proj", "v_proj"]) {
  const model = randomLlama(config, seed);
  const lora = model.attachLora({ ...LLAMAREC_LORA, targetModules: targets }, new Rng(seed + 1));
  const rng = new Rng(seed + 2);
  for (const a of lora.adapters.values()) for (let i = 0; i < a.B.size; i++) a.B.data[i] = 0.2 * rng.normal();
  return model;
}

describe("LoraAdapter", () => {
  it("initialises as PEFT: A ~ U(±1/√in), B = 0, so a fresh adapter leaves the model unchanged", () => {
    const model = randomLlama(config, 1);
    const before = model.lastLogits(ids);
    const lora = model.attachLora(LLAMAREC_LORA, new Rng(2));
    expect([...lora.adapters.keys()]).toEqual([
      "model.layers.0.self_attn.q_proj",
      "model.layers.0.self_attn.v_proj",
      "model.layers.1.self_attn.q_proj",
      "model.layers.1.self_attn.v_proj",
    ]);
    const a = lora.adapters.get("model.layers.0.self_attn.v_proj")!;
    expect(a.A.shape).toEqual([8, 64]);
    expect(a.B.shape).toEqual([32, 8]); // 2 kv heads × 16
    const bound = 1 / Math.sqrt(64);
    expect(Math.max(...a.A.data.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...a.A.data.map(Math.abs))).toBeGreaterThan(0.8 * bound);
    expect(a.B.data.every((v) => v === 0)).toBe(true);
    expect(a.scaling).toBe(4); // alpha 32 / r 8
    expect(loraScaling({ ...LLAMAREC_LORA, useRslora: true })).toBeCloseTo(32 / Math.sqrt(8), 12);
    expect(maxAbsDiff(model.lastLogits(ids), before)).toBe(0);
    // Only adapter weights train.
    expect(model.parameters().every((p) => !p.requiresGrad)).toBe(true);
    expect(model.loraParameters().every(([, p]) => p.requiresGrad)).toBe(true);
    expect(model.loraParameters()[0]![0]).toBe("model.layers.0.self_attn.q_proj.lora_A.weight");
  });

  it("computes base + scaling·B·A·x with the gradient of finite differences", () => {
    const rng = new Rng(3);
    const adapter = new LoraAdapter(6, 5, 2, 1.5, 0, rng);
    for (let i = 0; i < adapter.B.size; i++) adapter.B.data[i] = rng.normal();
    const W = randn(rng, [5, 6]);
    const x = randn(rng, [3, 6]);
    const y = noGrad(() => adapter.apply(x, linear(x, W, null)));
    const merged = Tensor.from(
      W.data.map((w, i) => w + adapter.mergedDelta()[i]!),
      [5, 6],
    );
    expect(maxAbsDiff(y.data, noGrad(() => linear(x, merged, null)).data)).toBeLessThan(1e-5);
    // A and B are read from the adapter itself; gradCheck perturbs them in place.
    const r = gradCheck(([xx]) => adapter.apply(xx!, linear(xx!, W, null)), [x, adapter.A, adapter.B]);
    expect(r.mismatches).toEqual([]);
  });

  it("the fused op equals the composed ops with dropout, values and gradients, and passes gradCheck", () => {
    const rng = new Rng(5);
    const adapter = new LoraAdapter(12, 7, 3, 2.5, 0.3, rng);
    for (let i = 0; i < adapter.B.size; i++) adapter.B.data[i] = rng.normal();
    adapter.train();
    const W = randn(rng, [7, 12]);
    const x = randn(rng, [5, 12]);
    x.requiresGrad = true;
    const start = adapter.rngState;
    const run = (fused: boolean) => {
      adapter.rngState = start;
      x.grad = null;
      adapter.A.grad = null;
      adapter.B.grad = null;
      const base = linear(x, W, null);
      const y = fused ? adapter.apply(x, base) : add(base, adapter.delta(x));
      const Rw = Tensor.from(
        Array.from({ length: y.size }, (_, i) => Math.sin(i)),
        y.shape,
      );
      backward(sumAll(mul(y, Rw)));
      return { y: y.data, gx: x.grad!, gA: adapter.A.grad!, gB: adapter.B.grad!, after: adapter.rngState };
    };
    const f = run(true);
    const c = run(false);
    expect(maxAbsDiff(f.y, c.y)).toBeLessThan(1e-5);
    expect(maxAbsDiff(f.gx, c.gx)).toBeLessThan(1e-5);
    expect(maxAbsDiff(f.gA, c.gA)).toBeLessThan(1e-5);
    expect(maxAbsDiff(f.gB, c.gB)).toBeLessThan(1e-5);
    expect(f.after).toEqual(c.after); // the generator advances the same
    const r = gradCheck(
      ([xx]) => {
        adapter.rngState = start; // same mask on every evaluation
        return adapter.apply(xx!, linear(xx!, W, null));
      },
      [x, adapter.A, adapter.B],
    );
    expect(r.mismatches).toEqual([]);
  });

  it("applies dropout to the adapter input in training mode only", () => {
    const rng = new Rng(4);
    const adapter = new LoraAdapter(16, 4, 2, 1, 0.5, rng);
    for (let i = 0; i < adapter.B.size; i++) adapter.B.data[i] = 1;
    const x = randn(rng, [4, 16]);
    adapter.eval();
    const a = noGrad(() => adapter.delta(x)).data;
    const b = noGrad(() => adapter.delta(x)).data;
    expect(maxAbsDiff(a, b)).toBe(0);
    adapter.train();
    const c = noGrad(() => adapter.delta(x)).data;
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-3);
  });

  it("getRandomState/setRandomState replay the dropout masks (one adapter and an attachment)", () => {
    const rng = new Rng(5);
    const adapter = new LoraAdapter(16, 4, 2, 1, 0.5, new Rng(6));
    for (let i = 0; i < adapter.B.size; i++) adapter.B.data[i] = 1;
    const x = randn(rng, [4, 16]);
    const base = new Tensor(new Float32Array(16), [4, 4]);
    const state = adapter.getRandomState();
    expect(state).toHaveLength(4);
    const first = noGrad(() => adapter.apply(x, base)).data;
    const second = noGrad(() => adapter.apply(x, base)).data;
    expect(maxAbsDiff(first, second)).toBeGreaterThan(1e-3);
    adapter.setRandomState(state);
    expect(maxAbsDiff(noGrad(() => adapter.apply(x, base)).data, first)).toBe(0);

    const adapters = [...adaptedModel(7).loraAttachment!.adapters.values()];
    const all = loraRandomState(adapters);
    expect(all).toHaveLength(4 * adapters.length);
    for (const a of adapters) noGrad(() => a.train().delta(randn(rng, [2, a.inFeatures])));
    expect(loraRandomState(adapters)).not.toEqual(all);
    setLoraRandomState(adapters, all);
    expect(loraRandomState(adapters)).toEqual(all);
    expect(() => setLoraRandomState(adapters, all.slice(4))).toThrow(/words/);
  });

  it("rejects bad configs naming the field", () => {
    const model = randomLlama(config, 1);
    expect(() => model.attachLora({ ...LLAMAREC_LORA, r: 0 }, new Rng(1))).toThrow(/r must be/);
    expect(() => model.attachLora({ ...LLAMAREC_LORA, targetModules: ["qkv"] }, new Rng(1))).toThrow(/"qkv"/);
    expect(() => model.attachLora({ ...LLAMAREC_LORA, dropout: 1 }, new Rng(1))).toThrow(/dropout/);
  });
});

describe("PEFT adapter folders", () => {
  it("writes the keys, shapes and adapter_config.json PEFT writes, and re-imports to identical scores", async () => {
    const model = adaptedModel(10);
    const want = model.lastLogits(ids);
    const out = join(dir, "peft");
    await exportPeft(model, out, { baseModel: "meta-llama/Llama-2-7b-hf" });
    const tensors = loadSafetensors(join(out, PEFT_WEIGHTS_FILE));
    expect([...tensors.keys()].sort()).toEqual(
      [0, 1].flatMap((l) =>
        ["q_proj", "v_proj"].flatMap((m) =>
          ["A", "B"].map((ab) => `base_model.model.model.layers.${l}.self_attn.${m}.lora_${ab}.weight`),
        ),
      ),
    );
    expect(tensors.get("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight")!.shape).toEqual([
      64, 8,
    ]);
    const cfg = JSON.parse(readFileSync(join(out, PEFT_CONFIG_FILE), "utf8"));
    expect(cfg).toMatchObject({
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      r: 8,
      lora_alpha: 32,
      lora_dropout: 0.05,
      target_modules: ["q_proj", "v_proj"],
      bias: "none",
      base_model_name_or_path: "meta-llama/Llama-2-7b-hf",
      use_rslora: false,
    });
    const fresh = randomLlama(config, 10);
    expect(maxAbsDiff(fresh.lastLogits(ids), want)).toBeGreaterThan(1e-3);
    const imported = importPeft(fresh, out);
    expect(imported.targetModules).toEqual(["q_proj", "v_proj"]);
    expect(maxAbsDiff(fresh.lastLogits(ids), want)).toBe(0);
  });

  it("reads adapters saved with the adapter name in the keys, and rejects what it cannot apply", async () => {
    const model = adaptedModel(11, ["k_proj", "down_proj"]);
    const want = model.lastLogits(ids);
    const out = join(dir, "peft2");
    await exportPeft(model, out);
    const w = loadSafetensors(join(out, PEFT_WEIGHTS_FILE));
    const renamed = new Map([...w].map(([k, v]) => [k.replace(".weight", ".default.weight"), v]));
    saveSafetensors(join(out, PEFT_WEIGHTS_FILE), renamed);
    const fresh = randomLlama(config, 11);
    attachLoraFromPath(fresh, out);
    expect(maxAbsDiff(fresh.lastLogits(ids), want)).toBe(0);

    const cfgPath = join(out, PEFT_CONFIG_FILE);
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, use_dora: true }));
    expect(() => importPeft(fresh, out)).toThrow(/field use_dora/);
    writeFileSync(cfgPath, JSON.stringify(cfg));
    saveSafetensors(
      join(out, PEFT_WEIGHTS_FILE),
      new Map([["base_model.model.lm_head.weight", w.values().next().value!]]),
    );
    expect(() => importPeft(fresh, out)).toThrow(/unexpected tensor base_model\.model\.lm_head\.weight/);
  });
});

describe("GGUF LoRA adapters", () => {
  it("writes llama.cpp tensor names, shapes and alpha, and re-imports to identical scores", () => {
    const model = adaptedModel(20, ["q_proj", "k_proj", "v_proj"]);
    const want = model.lastLogits(ids);
    const path = join(dir, "lora.gguf");
    exportLoraGguf(model, path);
    const f = GgufFile.open(path);
    expect(f.get("general.type")).toBe("adapter");
    expect(f.get("adapter.type")).toBe("lora");
    expect(f.get("adapter.lora.alpha")).toBe(32);
    expect(f.tensor("blk.1.attn_k.weight.lora_a")!.dims).toEqual([64, 8]);
    expect(f.tensor("blk.1.attn_k.weight.lora_b")!.dims).toEqual([8, 32]);
    // B of q is stored with llama.cpp's Q row permutation.
    const onDisk = f.readTensor("blk.0.attn_q.weight.lora_b");
    f.close();
    const b = model.loraAttachment!.adapters.get("model.layers.0.self_attn.q_proj")!.B.data;
    expect(maxAbsDiff(onDisk, b)).toBeGreaterThan(0);
    const fresh = randomLlama(config, 20);
    importLoraGguf(fresh, path);
    expect(fresh.loraAttachment!.config.targetModules).toEqual(["q_proj", "k_proj", "v_proj"]);
    expect(maxAbsDiff(fresh.lastLogits(ids), want)).toBeLessThan(1e-6);
  });
});

describe("merged export", () => {
  it("writes W + scaling·B·A into a plain GGUF model that scores like the adapted one", () => {
    const model = adaptedModel(30, ["q_proj", "k_proj", "o_proj", "up_proj"]);
    const want = model.lastLogits(ids);
    const path = join(dir, "merged.gguf");
    writeLlamaGguf(path, model, { tokenizer: syntheticSpmVocab(320), mergeLora: true });
    const merged = loadLlama(path);
    expect(merged.loraAttachment).toBeNull();
    expect(maxAbsDiff(merged.lastLogits(ids), want)).toBeLessThan(1e-4);
    model.detachLora();
    expect(maxAbsDiff(model.lastLogits(ids), want)).toBeGreaterThan(1e-3);
  });
});
