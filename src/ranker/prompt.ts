/**
 * The LlamaRec ranking prompt (paper defaults from the official config.py and dataloader/llm.py):
 *
 *   <s>### Instruction:\n{instruction}\n\n### Input:\nUser history: (1) t1 \n (2) t2; \n Candidate pool: (A) c1 \n (B) c2\n\n### Response:\n
 *
 * Differences from the official code, on purpose:
 * - Over-long prompts: the official tokenizer truncates from the LEFT of the token sequence (truncation_side
 *   = "left"), which cuts the instruction first. We instead drop the oldest history items (renumbering the
 *   rest from 1), so the instruction, the candidates and the response marker always survive.
 * - Training examples reserve two tokens (letter + EOS) inside the same budget, so they never exceed it;
 *   the official code appends EOS after truncation and then cuts one more token from the left in the collator.
 * Titles are cut to `maxTitleTokens` tokens exactly as the official truncate_title (tokenize, keep the
 * first N pieces, convert back to a string); titles that fit are kept verbatim.
 */

import type { Tokenizer } from "../llm/tokenizer/types.js";
import { InputError } from "../util/errors.js";

export interface PromptConfig {
  /** Outer template with {instruction} and {input}; must end with the response marker. */
  template: string;
  instruction: string;
  /** With {history} and {candidates}. */
  inputTemplate: string;
  /** Separator between list items. */
  itemSeparator: string;
  /** Most recent history items kept. */
  maxHistory: number;
  maxTitleTokens: number;
  /** Whole prompt including BOS. */
  maxPromptTokens: number;
}

export const ALPACA_SHORT_TEMPLATE =
  "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";

export const PAPER_PROMPT: Readonly<PromptConfig> = {
  template: ALPACA_SHORT_TEMPLATE,
  instruction:
    "Given user history in chronological order, recommend an item from the candidate pool with its index letter.",
  inputTemplate: "User history: {history}; \n Candidate pool: {candidates}",
  itemSeparator: " \n ",
  maxHistory: 20,
  maxTitleTokens: 32,
  maxPromptTokens: 1536,
};

/** Index letter of candidate i: A, B, … */
export function indexLetter(i: number): string {
  if (i < 0 || i >= 26) throw new RangeError(`candidate index ${i} has no letter (A–Z)`);
  return String.fromCharCode(65 + i);
}

export interface RankingExample {
  /** Item titles in chronological order (oldest first). */
  history: readonly string[];
  /** Candidate titles in letter order (A first). */
  candidates: readonly string[];
}

export interface BuiltPrompt {
  text: string;
  /** Token ids, BOS first, ending with the response marker. */
  ids: number[];
  /** History items that made it into the prompt (after maxHistory and the token budget). */
  historyUsed: number;
}

export interface TrainingExample {
  /** prompt ids + answer letter id + EOS. */
  ids: number[];
  /** 1 where the loss applies (the letter and EOS), 0 elsewhere. */
  labelMask: Uint8Array;
  prompt: BuiltPrompt;
}

function fill(template: string, values: Record<string, string>): string {
  // One pass, so a title containing "{input}" is never substituted again.
  return template.replace(/\{(\w+)\}/g, (m, key: string) => values[key] ?? m);
}

export class PromptBuilder {
  readonly config: Readonly<PromptConfig>;

  constructor(
    readonly tokenizer: Tokenizer,
    config: Partial<PromptConfig> = {},
  ) {
    this.config = { ...PAPER_PROMPT, ...config };
    if (!this.config.template.includes("{input}") || !this.config.template.includes("{instruction}")) {
      throw new InputError("prompt template must contain {instruction} and {input}");
    }
  }

  /** The title cut to maxTitleTokens tokens (official truncate_title). */
  truncateTitle(title: string): string {
    const ids = this.tokenizer.encode(title, { addBos: false });
    if (ids.length <= this.config.maxTitleTokens) return title;
    return this.tokenizer.decode(ids.slice(0, this.config.maxTitleTokens));
  }

  /** The prompt text for given (already truncated) titles. */
  render(history: readonly string[], candidates: readonly string[]): string {
    const sep = this.config.itemSeparator;
    const historyText = history.map((t, i) => `(${i + 1}) ${t}`).join(sep);
    const candidateText = candidates.map((t, i) => `(${indexLetter(i)}) ${t}`).join(sep);
    const input = fill(this.config.inputTemplate, { history: historyText, candidates: candidateText });
    return fill(this.config.template, { instruction: this.config.instruction, input });
  }

  /** Tokenized prompt within `budget` tokens (default maxPromptTokens), dropping the oldest history first. */
  build(example: RankingExample, budget = this.config.maxPromptTokens): BuiltPrompt {
    if (example.candidates.length === 0)
      throw new InputError("a ranking prompt needs at least one candidate");
    const candidates = example.candidates.map((t) => this.truncateTitle(t));
    const recent = example.history.slice(-this.config.maxHistory).map((t) => this.truncateTitle(t));
    // Token count is nearly additive in items, so estimate how many to drop, then correct by retokenizing.
    let keep = recent.length;
    for (;;) {
      const history = recent.slice(recent.length - keep);
      const text = this.render(history, candidates);
      const ids = this.tokenizer.encode(text, { addBos: true });
      if (ids.length <= budget) return { text, ids, historyUsed: keep };
      if (keep === 0) {
        throw new InputError(
          `ranking prompt needs ${ids.length} tokens without any history, over the budget of ${budget}; ` +
            "raise maxPromptTokens or lower maxTitleTokens",
        );
      }
      keep--;
    }
  }

  /**
   * Prompt + answer letter + EOS, loss on the letter and EOS only (official llm_train_on_inputs = false).
   * `letterIds` are the verbalizer's ids, so training and scoring use the same tokens.
   */
  buildTraining(example: RankingExample, answerIndex: number, letterIds: readonly number[]): TrainingExample {
    const eos = this.tokenizer.eosId;
    if (eos === null) throw new Error("tokenizer has no EOS token; cannot build a training example");
    const letter = letterIds[answerIndex];
    if (letter === undefined || answerIndex >= example.candidates.length) {
      throw new RangeError(
        `answer index ${answerIndex} is outside the ${example.candidates.length} candidates`,
      );
    }
    const prompt = this.build(example, this.config.maxPromptTokens - 2);
    const ids = [...prompt.ids, letter, eos];
    const labelMask = new Uint8Array(ids.length);
    labelMask[ids.length - 2] = 1;
    labelMask[ids.length - 1] = 1;
    return { ids, labelMask, prompt };
  }
}
