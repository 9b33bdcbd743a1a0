/**
 * The one contract every ranker backend implements (our TS engine, llama.cpp, a remote OpenAI-compatible
 * server): token ids in, letter scores out. Prompt building and the verbalizer live outside the backends,
 * so all backends score exactly the same tokens.
 */

export interface PromptIds {
  /** Prompt token ids, BOS first, ending with the response marker (built by PromptBuilder). */
  readonly ids: readonly number[];
  /** Verbalizer ids of the letters to score, in candidate order (Verbalizer.ids, possibly fewer than 20). */
  readonly letterIds: readonly number[];
}

export interface RankerBackend {
  readonly name: string;
  /**
   * For each prompt, the next-token scores after its last token at its `letterIds`, in that order.
   * Values are logits or log-probabilities: equal up to a per-prompt constant, which the verbalizer's
   * log-softmax over the letters removes. Order of the result = order of `prompts`.
   */
  scorePrompts(prompts: readonly PromptIds[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}
