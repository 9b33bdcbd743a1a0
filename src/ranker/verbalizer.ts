/**
 * Maps the next-token distribution after the prompt to scores for the candidate letters A, B, ….
 *
 * Letter ids, two modes:
 * - "answer-position" (default): the id the letter gets when it follows the prompt, found by tokenizing
 *   prompt + letter and taking what the letter adds. This is the token the model is trained to emit.
 * - "isolated": the letter tokenized alone without BOS, as the official ManualVerbalizer does
 *   (tokenizer.encode("A", add_special_tokens=False)). With SentencePiece this is "▁A" (Llama 2: 319),
 *   while after "### Response:\n" the letter is "A" (Llama 2: 29909): the official code trains one token and
 *   reads another. Kept for reproducing the paper's numbers.
 * Scores are the logits at those ids, log-softmaxed over the letters (the official verbalizer uses the raw
 * logits, which rank identically).
 */
import type { Tokenizer } from "../llm/tokenizer/types.js";
import { ALPACA_SHORT_TEMPLATE, indexLetter, type PromptBuilder } from "./prompt.js";

export type LetterIdMode = "answer-position" | "isolated";

export interface VerbalizerOptions {
  /** Number of letters (candidates). Default 20. */
  count?: number;
  mode?: LetterIdMode;
  /** Text the answer follows in "answer-position" mode; any prompt ending with the response marker. */
  context?: string;
}

export class Verbalizer {
  readonly letters: string[];
  readonly ids: number[];

  private constructor(
    readonly mode: LetterIdMode,
    letters: string[],
    ids: number[],
  ) {
    this.letters = letters;
    this.ids = ids;
  }

  static create(tokenizer: Tokenizer, options: VerbalizerOptions = {}): Verbalizer {
    const count = options.count ?? 20;
    const mode = options.mode ?? "answer-position";
    const context =
      options.context ??
      ALPACA_SHORT_TEMPLATE.replace("{instruction}", "Pick one.").replace("{input}", "(A) x \n (B) y");
    const letters = Array.from({ length: count }, (_, i) => indexLetter(i));
    const base = tokenizer.encode(context, { addBos: true });
    const ids = letters.map((letter) => {
      if (mode === "isolated") {
        const alone = tokenizer.encode(letter, { addBos: false });
        if (alone.length !== 1) throw new Error(`letter ${letter} tokenizes alone to ${alone.length} tokens`);
        return alone[0]!;
      }
      const full = tokenizer.encode(context + letter, { addBos: true });
      const prefixOk = base.every((id, i) => full[i] === id);
      if (!prefixOk || full.length !== base.length + 1) {
        throw new Error(
          `letter ${letter} is not exactly one token after the prompt (it changes the prompt's tokens or adds ${full.length - base.length}); this tokenizer cannot use the letter verbalizer`,
        );
      }
      return full[full.length - 1]!;
    });
    if (new Set(ids).size !== ids.length) throw new Error(`letters share token ids: ${ids.join(",")}`);
    return new Verbalizer(mode, letters, ids);
  }

  /** Letter ids as they follow this builder's own prompt template (what the model sees and is trained on). */
  static forPrompt(builder: PromptBuilder, options: Omit<VerbalizerOptions, "context"> = {}): Verbalizer {
    return Verbalizer.create(builder.tokenizer, { ...options, context: builder.render(["x"], ["y"]) });
  }

  /** Log-softmax over the letters of the next-token logits (full vocabulary, at the last prompt position). */
  scoreLogits(logits: ArrayLike<number>, candidates = this.ids.length): Float32Array {
    const picked = new Float32Array(candidates);
    for (let i = 0; i < candidates; i++) picked[i] = logits[this.ids[i]!]!;
    return logSoftmax(picked);
  }
}

/**
 * log-softmax; input may be logits or log-probabilities (any per-row constant cancels). -Infinity entries
 * stay -Infinity; an all -Infinity row becomes uniform rather than NaN.
 */
export function logSoftmax(values: ArrayLike<number>): Float32Array {
  const n = values.length;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) max = Math.max(max, values[i]!);
  const out = new Float32Array(n);
  if (max === Number.NEGATIVE_INFINITY) return out.fill(-Math.log(n));
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(values[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = values[i]! - lse;
  return out;
}
