/** LoRA hyper-parameters, named as PEFT's LoraConfig (the paper: r 8, alpha 32, dropout 0.05, q/v). */
export interface LoraConfig {
  readonly r: number;
  readonly alpha: number;
  readonly dropout: number;
  /** Projection names inside a decoder layer: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj. */
  readonly targetModules: readonly string[];
  /** PEFT use_rslora: scaling alpha/√r instead of alpha/r. */
  readonly useRslora?: boolean;
}

export const LLAMAREC_LORA: Readonly<LoraConfig> = {
  r: 8,
  alpha: 32,
  dropout: 0.05,
  targetModules: ["q_proj", "v_proj"],
};

export const LORA_TARGETS = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;

export function loraScaling(c: LoraConfig): number {
  return c.useRslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
}

export function validateLoraConfig(c: LoraConfig, source = "LoRA config"): void {
  if (!Number.isInteger(c.r) || c.r <= 0)
    throw new RangeError(`${source}: r must be a positive integer, got ${c.r}`);
  if (!Number.isFinite(c.alpha)) throw new RangeError(`${source}: alpha must be a number, got ${c.alpha}`);
  if (!(c.dropout >= 0 && c.dropout < 1))
    throw new RangeError(`${source}: dropout must be in [0, 1), got ${c.dropout}`);
  if (c.targetModules.length === 0) throw new RangeError(`${source}: targetModules is empty`);
  for (const t of c.targetModules) {
    if (!(LORA_TARGETS as readonly string[]).includes(t))
      throw new RangeError(`${source}: unknown target module "${t}" (known: ${LORA_TARGETS.join(", ")})`);
  }
}
