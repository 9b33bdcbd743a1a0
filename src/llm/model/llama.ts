/**
 * Llama-family causal LM on our tensor API (Llama 1/2/3, GQA, Qwen2 q/k/v biases): token embedding →
 * N × [RMSNorm → GQA self-attention with rotary → residual → RMSNorm → SwiGLU MLP → residual] → RMSNorm →
 * LM head (tied or untied). Parameter names are HF's ("model.layers.0.self_attn.q_proj.weight"), so HF
 * state dicts and PEFT adapters map one to one.
 *
 * Inference (lastLogits) runs under noGrad and only projects the last position onto the vocabulary; in
 * the last layer only that position's query, output projection and MLP are computed (hidden's lastRows
 * does the same for the last k positions when training on an answer). Training (hidden) records on the
 * tape; attention keeps O(T·d) per layer (ops/attention.ts), LoRA keeps [T, r] (lora/op.ts), and with
 * `checkpoint` each layer keeps only its input and is recomputed in the backward (ops/checkpoint.ts).
 */

import { Module } from "../../tensor/nn/module.js";
import { add } from "../../tensor/ops/elementwise.js";
import { embedding } from "../../tensor/ops/embedding.js";
import { linear } from "../../tensor/ops/matmul.js";
import { rmsNorm } from "../../tensor/ops/norm.js";
import { slice } from "../../tensor/ops/shape.js";
import type { Rng } from "../../tensor/rng.js";
import { noGrad } from "../../tensor/tape.js";
import { Parameter, type Tensor } from "../../tensor/tensor.js";
import { InputError } from "../../util/errors.js";
import { type LlamaConfig, ropeInverseFrequencies, validateConfig, type WeightSource } from "../config.js";
import { LoraAdapter } from "../lora/adapter.js";
import { type LoraConfig, loraScaling, validateLoraConfig } from "../lora/config.js";
import { causalAttention } from "./ops/attention.js";
import { checkpoint, type RandomState } from "./ops/checkpoint.js";
import { RopeTable, rotary } from "./ops/rotary.js";
import { swiglu } from "./ops/swiglu.js";

/** A bias-optional linear layer whose weight is usually frozen and which may carry a LoRA adapter. */
export class Projection extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  /** Not a registered child: the base state dict stays the base model's; adapters are saved apart. */
  lora: LoraAdapter | null = null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias: boolean,
  ) {
    super();
    this.weight = this.registerParameter("weight", Parameter.zerosNamed("weight", [outFeatures, inFeatures]));
    this.bias = bias ? this.registerParameter("bias", Parameter.zerosNamed("bias", [outFeatures])) : null;
  }

  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias);
    return this.lora ? this.lora.apply(x, y) : y;
  }
}

class ModuleList extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.registerModule(name, m);
  }
}

class RmsNorm extends Module {
  readonly weight: Parameter;
  constructor(
    dim: number,
    readonly eps: number,
  ) {
    super();
    this.weight = this.registerParameter(
      "weight",
      new Parameter("weight", new Float32Array(dim).fill(1), [dim]),
    );
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

class Attention extends Module {
  readonly q_proj: Projection;
  readonly k_proj: Projection;
  readonly v_proj: Projection;
  readonly o_proj: Projection;

  constructor(private readonly c: LlamaConfig) {
    super();
    const qw = c.numHeads * c.headDim;
    const kvw = c.numKvHeads * c.headDim;
    this.q_proj = this.registerModule("q_proj", new Projection(c.hiddenSize, qw, c.attentionBias));
    this.k_proj = this.registerModule("k_proj", new Projection(c.hiddenSize, kvw, c.attentionBias));
    this.v_proj = this.registerModule("v_proj", new Projection(c.hiddenSize, kvw, c.attentionBias));
    this.o_proj = this.registerModule("o_proj", new Projection(qw, c.hiddenSize, c.outputBias));
  }

  /** x [T, d] normed input; returns the outputs of the last `rows` positions [rows, d]. */
  forward(x: Tensor, rope: RopeTable, rows: number): Tensor {
    const T = x.dim(0);
    const c = this.c;
    const xq = rows < T ? slice(x, 0, T - rows, T) : x;
    const q = rotary(this.q_proj.forward(xq), c.numHeads, rope, T - xq.dim(0));
    const k = rotary(this.k_proj.forward(x), c.numKvHeads, rope);
    const v = this.v_proj.forward(x);
    const o = causalAttention(q, k, v, { heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim });
    return this.o_proj.forward(o);
  }
}

class Mlp extends Module {
  readonly gate_proj: Projection;
  readonly up_proj: Projection;
  readonly down_proj: Projection;

  constructor(c: LlamaConfig) {
    super();
    this.gate_proj = this.registerModule(
      "gate_proj",
      new Projection(c.hiddenSize, c.intermediateSize, false),
    );
    this.up_proj = this.registerModule("up_proj", new Projection(c.hiddenSize, c.intermediateSize, false));
    this.down_proj = this.registerModule(
      "down_proj",
      new Projection(c.intermediateSize, c.hiddenSize, false),
    );
  }

  forward(x: Tensor): Tensor {
    return this.down_proj.forward(swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }
}

export class DecoderLayer extends Module {
  readonly input_layernorm: RmsNorm;
  readonly self_attn: Attention;
  readonly post_attention_layernorm: RmsNorm;
  readonly mlp: Mlp;

  constructor(c: LlamaConfig) {
    super();
    this.input_layernorm = this.registerModule("input_layernorm", new RmsNorm(c.hiddenSize, c.rmsNormEps));
    this.self_attn = this.registerModule("self_attn", new Attention(c));
    this.post_attention_layernorm = this.registerModule(
      "post_attention_layernorm",
      new RmsNorm(c.hiddenSize, c.rmsNormEps),
    );
    this.mlp = this.registerModule("mlp", new Mlp(c));
  }

  /** x [T, d]; returns the last `rows` positions (the keys and values still cover all T). */
  forward(x: Tensor, rope: RopeTable, rows: number): Tensor {
    const T = x.dim(0);
    const attn = this.self_attn.forward(this.input_layernorm.forward(x), rope, rows);
    const h = add(rows < T ? slice(x, 0, T - rows, T) : x, attn);
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }

  /** True when a backward pass through this layer has something to update (weights or adapters). */
  hasTrainable(): boolean {
    if (this.parameters().some((p) => p.requiresGrad)) return true;
    return Object.values(this.projections()).some((p) => p.lora?.parameters().some((q) => q.requiresGrad));
  }

  /** The random streams of this layer's adapters, for checkpoint recomputation. */
  randomState(): RandomState {
    const adapters = Object.values(this.projections()).flatMap((p) => (p.lora ? [p.lora] : []));
    return {
      save: () => adapters.map((a) => a.rngState),
      restore: (s) => {
        (s as number[][]).forEach((st, i) => {
          adapters[i]!.rngState = st;
        });
      },
    };
  }

  projections(): Record<string, Projection> {
    const a = this.self_attn;
    const m = this.mlp;
    return {
      q_proj: a.q_proj,
      k_proj: a.k_proj,
      v_proj: a.v_proj,
      o_proj: a.o_proj,
      gate_proj: m.gate_proj,
      up_proj: m.up_proj,
      down_proj: m.down_proj,
    };
  }
}

class Backbone extends Module {
  readonly embed_tokens: Parameter;
  readonly layers: DecoderLayer[];
  readonly norm: RmsNorm;

  constructor(c: LlamaConfig) {
    super();
    this.embed_tokens = this.registerParameter(
      "embed_tokens.weight",
      Parameter.zerosNamed("embed_tokens.weight", [c.vocabSize, c.hiddenSize]),
    );
    const list = this.registerModule("layers", new ModuleList());
    this.layers = Array.from({ length: c.numLayers }, (_, i) => list.add(String(i), new DecoderLayer(c)));
    this.norm = this.registerModule("norm", new RmsNorm(c.hiddenSize, c.rmsNormEps));
  }
}

export interface LoraAttachment {
  readonly config: LoraConfig;
  /** Adapters by HF module path, e.g. "model.layers.3.self_attn.q_proj". */
  readonly adapters: ReadonlyMap<string, LoraAdapter>;
}

export class LlamaForCausalLM extends Module {
  readonly model: Backbone;
  /** Null when tied to the embedding. */
  readonly lmHead: Parameter | null;
  readonly rope: RopeTable;
  private lora: LoraAttachment | null = null;

  /** `ropeFreqFactors`: a GGUF rope_freqs tensor (WeightSource.ropeFreqFactors()), replacing ropeScaling. */
  constructor(
    readonly config: LlamaConfig,
    readonly ropeFreqFactors: Float32Array | null = null,
  ) {
    super();
    validateConfig(config, "model config");
    this.model = this.registerModule("model", new Backbone(config));
    this.lmHead = config.tieWordEmbeddings
      ? null
      : this.registerParameter(
          "lm_head.weight",
          Parameter.zerosNamed("lm_head.weight", [config.vocabSize, config.hiddenSize]),
        );
    this.rope = new RopeTable(ropeInverseFrequencies(config, ropeFreqFactors));
    this.setBaseTrainable(false);
    this.eval();
  }

  /** A model with every weight read (as float32) from a GGUF or HF WeightSource; shapes are checked. */
  static fromWeights(src: WeightSource): LlamaForCausalLM {
    const m = new LlamaForCausalLM(src.config, src.ropeFreqFactors());
    for (const [name, p] of m.namedParameters()) {
      if (!src.has(name)) throw new InputError(`${src.path}: missing weight ${name}`);
      const shape = src.shape(name);
      if (shape.length !== p.rank || shape.some((d, i) => d !== p.shape[i]))
        throw new InputError(
          `${src.path}: weight ${name} has shape [${shape}], the config implies [${p.shape}]`,
        );
      p.data.set(src.get(name));
    }
    return m;
  }

  /** The [vocab, d] output matrix (the embedding when tied). */
  get outputWeight(): Parameter {
    return this.lmHead ?? this.model.embed_tokens;
  }

  /** Base weights are frozen by default (LoRA fine-tuning); turn on for full fine-tuning. */
  setBaseTrainable(on: boolean): void {
    for (const p of this.parameters()) p.requiresGrad = on;
  }

  /**
   * Final-normed hidden states [T, d] of a token sequence; with `lastRows` k only the last k positions
   * [k, d] (the last layer then computes only those queries and MLP rows: use k = 1 for next-token
   * scoring, k = answer length for training on the answer).
   * Records on the tape when grad mode is on and something requires grad. With `checkpoint`, each
   * decoder layer keeps only its input on the tape and is recomputed in the backward pass (about one
   * more forward of compute for O(layers·T·d) activation memory).
   */
  hidden(ids: Int32Array, options: { lastRows?: number; checkpoint?: boolean } = {}): Tensor {
    if (ids.length === 0) throw new RangeError("cannot run the model on an empty sequence");
    const c = this.config;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!(id >= 0 && id < c.vocabSize))
        throw new RangeError(`token id ${id} at position ${i} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    let x = embedding(this.model.embed_tokens, ids);
    const layers = this.model.layers;
    layers.forEach((layer, i) => {
      const rows =
        i === layers.length - 1 ? Math.min(options.lastRows ?? ids.length, ids.length) : ids.length;
      const run = (input: Tensor) => layer.forward(input, this.rope, rows);
      x = options.checkpoint
        ? checkpoint(run, x, x.requiresGrad || layer.hasTrainable(), layer.randomState())
        : run(x);
    });
    return this.model.norm.forward(x);
  }

  /** Logits [rows, vocab] of hidden states [rows, d]. */
  logits(hidden: Tensor): Tensor {
    return linear(hidden, this.outputWeight, null);
  }

  /** Next-token logits after the last token (inference: no tape, one vocabulary projection). */
  lastLogits(ids: Int32Array): Float32Array {
    return noGrad(() => this.logits(this.hidden(ids, { lastRows: 1 })).data);
  }

  /** Attaches fresh adapters (A random, B zero) to the target projections of every layer. */
  attachLora(config: LoraConfig, rng: Rng): LoraAttachment {
    validateLoraConfig(config);
    const scaling = loraScaling(config);
    const adapters = new Map<string, LoraAdapter>();
    this.model.layers.forEach((layer, i) => {
      const projections = layer.projections();
      for (const target of config.targetModules) {
        const p = projections[target]!;
        const kind = ["gate_proj", "up_proj", "down_proj"].includes(target) ? "mlp" : "self_attn";
        const adapter = new LoraAdapter(
          p.inFeatures,
          p.outFeatures,
          config.r,
          scaling,
          config.dropout,
          rng.fork(),
        );
        p.lora = adapter;
        adapters.set(`model.layers.${i}.${kind}.${target}`, adapter);
      }
    });
    this.lora = { config, adapters };
    this.train(this.training);
    return this.lora;
  }

  /** Removes all adapters (the base weights were never changed). */
  detachLora(): void {
    for (const layer of this.model.layers) for (const p of Object.values(layer.projections())) p.lora = null;
    this.lora = null;
  }

  get loraAttachment(): LoraAttachment | null {
    return this.lora;
  }

  /** Trainable adapter parameters with PEFT-style names (without the "base_model.model." prefix). */
  loraParameters(): Array<[string, Parameter]> {
    if (!this.lora) return [];
    const out: Array<[string, Parameter]> = [];
    for (const [path, a] of this.lora.adapters) out.push(...a.namedParameters(`${path}.`));
    return out;
  }

  override train(on = true): this {
    super.train(on);
    if (this.lora) for (const a of this.lora.adapters.values()) a.train(on);
    return this;
  }
}
