import { TokenType } from "./types.js";

/** Splits text around literal special-token strings (longest match first), like llama.cpp's tokenizer_st_partition. */
export interface Fragment {
  text: string;
  special: boolean;
}

export function splitOnSpecial(text: string, specials: readonly string[]): Fragment[] {
  if (specials.length === 0 || text.length === 0) return text ? [{ text, special: false }] : [];
  const parts: Fragment[] = [];
  let plain = "";
  let i = 0;
  outer: while (i < text.length) {
    for (const tok of specials) {
      if (text.startsWith(tok, i)) {
        if (plain) parts.push({ text: plain, special: false });
        plain = "";
        parts.push({ text: tok, special: true });
        i += tok.length;
        continue outer;
      }
    }
    plain += text[i];
    i++;
  }
  if (plain) parts.push({ text: plain, special: false });
  return parts;
}

/** The vocabulary's user-defined tokens, longest first: matched literally in text before any merging. */
export function userDefinedTokens(tokens: readonly string[], types: readonly number[]): string[] {
  return tokens
    .filter((t, i) => types[i] === TokenType.USER_DEFINED && t.length > 0)
    .sort((a, b) => b.length - a.length);
}
