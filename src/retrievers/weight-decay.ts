/**
 * The official LlamaRec retriever trainer's parameter groups: no weight decay for names containing "bias"
 * or "layer_norm". Passed to AdamW as its `noDecay` rule (the optimizer itself knows no model names).
 */
export function llamaRecNoDecay(name: string): boolean {
  return name.includes("bias") || name.includes("layer_norm");
}
