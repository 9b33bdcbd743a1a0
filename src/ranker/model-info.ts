/**
 * `llamarec model info`: the model summary of src/llm/info.ts plus what the ranker needs from the model's
 * tokenizer, the verbalizer's letter ids A–T (the answer-position ids the ranker uses and the official
 * code's isolated-letter ids).
 */
import { describeModelAndTokenizer, formatModelInfo, type ModelInfo } from "../llm/info.js";
import type { Tokenizer } from "../llm/tokenizer/types.js";
import { Verbalizer } from "./verbalizer.js";

export interface LetterIds {
  answerPosition: number[] | null;
  isolated: number[] | null;
  error?: string;
}

export interface RankerModelInfo extends ModelInfo {
  letterIds: LetterIds | null;
}

function letterIds(tok: Tokenizer): LetterIds {
  const tryMode = (mode: "answer-position" | "isolated"): { ids?: number[]; error?: string } => {
    try {
      return { ids: Verbalizer.create(tok, { mode }).ids };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
  const a = tryMode("answer-position");
  const i = tryMode("isolated");
  return {
    answerPosition: a.ids ?? null,
    isolated: i.ids ?? null,
    ...(a.error ? { error: a.error } : {}),
  };
}

export function describeRankerModel(path: string): RankerModelInfo {
  const { info, tokenizer } = describeModelAndTokenizer(path);
  return { ...info, letterIds: tokenizer ? letterIds(tokenizer) : null };
}

export function formatRankerModelInfo(info: RankerModelInfo): string {
  const lines = [formatModelInfo(info)];
  if (info.letterIds) {
    const l = info.letterIds;
    lines.push(
      `letter ids A–T (answer position): ${l.answerPosition ? l.answerPosition.join(",") : `unusable — ${l.error}`}`,
    );
    lines.push(`letter ids A–T (isolated, official): ${l.isolated ? l.isolated.join(",") : "-"}`);
  }
  return lines.join("\n");
}
