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
