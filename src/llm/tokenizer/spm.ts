/**
 * SentencePiece-style BPE with byte fallback, as llama.cpp runs it for tokenizer.ggml.model = "llama"
 * (Llama 2, Mistral v0.1, TinyLlama): spaces become "▁", one "▁" is prefixed to the text, then adjacent
 * symbols are merged greedily by the score of the merged piece (ties: leftmost first); pieces missing from
 * the vocabulary fall back to <0xXX> byte tokens. Mirrors llm_tokenizer_spm in llama-vocab.cpp so ids match.
 */
import { Heap } from "./heap.js";
import { splitOnSpecial, userDefinedTokens } from "./special.js";
import { type DecodeOptions, type EncodeOptions, type Tokenizer, TokenType } from "./types.js";

export interface SpmVocab {
  tokens: string[];
  scores: number[];
  types: number[];
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  addBos: boolean;
  /** Prefix a "▁" to the text (and after every user-defined token), SentencePiece's add_dummy_prefix. */
  addSpacePrefix: boolean;
}

interface SpmSymbol {
  start: number; // index into the char array
  len: number; // chars; 0 = merged away
  text: string;
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  text: string;
}

export class SpmTokenizer implements Tokenizer {
  readonly kind = "spm" as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly addBosByDefault: boolean;
  private readonly ids = new Map<string, number>();
  private readonly byteIds: number[] = [];
  // Always split out of the text before BPE, longest first (llama.cpp does this even without parse_special).
  private readonly userDefined: string[];

  constructor(private readonly vocab: SpmVocab) {
    this.vocabSize = vocab.tokens.length;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.addBosByDefault = vocab.addBos;
    vocab.tokens.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
    for (let b = 0; b < 256; b++) {
      const hex = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      const id = this.ids.get(hex) ?? this.ids.get(String.fromCharCode(b)) ?? vocab.unkId;
      if (id === undefined || id === null)
        throw new Error(`SentencePiece vocabulary has no byte token ${hex}`);
      this.byteIds.push(id);
    }
    this.userDefined = userDefinedTokens(vocab.tokens, vocab.types);
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.vocab.tokens[id];
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if ((options.addBos ?? this.addBosByDefault) && this.bosId !== null) out.push(this.bosId);
    let prevSpecial = true;
    for (const fragment of splitOnSpecial(text, this.userDefined)) {
      if (fragment.special) {
        out.push(this.ids.get(fragment.text)!);
        prevSpecial = true;
        continue;
      }
      const prefixed = this.vocab.addSpacePrefix && prevSpecial ? ` ${fragment.text}` : fragment.text;
      this.encodeRaw(prefixed.replaceAll(" ", "▁"), out);
      prevSpecial = false;
    }
    return out;
  }

  private encodeRaw(text: string, out: number[]): void {
    const chars = Array.from(text); // code points, like llama.cpp's utf8 symbol split
    if (chars.length === 0) return;
    const symbols: SpmSymbol[] = chars.map((c, i) => ({
      start: i,
      len: 1,
      text: c,
      prev: i - 1,
      next: i + 1 < chars.length ? i + 1 : -1,
    }));
    const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
    const tryAdd = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const merged = symbols[left]!.text + symbols[right]!.text;
      const id = this.ids.get(merged);
      if (id === undefined) return;
      queue.push({ left, right, score: this.vocab.scores[id] ?? 0, text: merged });
    };
    for (let i = 1; i < symbols.length; i++) tryAdd(i - 1, i);
    while (queue.size > 0) {
      const bg = queue.pop()!;
      const l = symbols[bg.left]!;
      const r = symbols[bg.right]!;
      // Stale entry: one side was merged into something else since this pair was queued.
      if (l.len === 0 || r.len === 0 || l.text + r.text !== bg.text || l.next !== bg.right) continue;
      l.text = bg.text;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[r.next]!.prev = bg.left;
      tryAdd(l.prev, bg.left);
      tryAdd(bg.left, l.next);
    }
    for (let i = 0; i !== -1; i = symbols[i]!.next) {
      const s = symbols[i]!;
      const id = this.ids.get(s.text);
      if (id !== undefined) {
        out.push(id);
      } else {
        for (const b of Buffer.from(s.text, "utf8")) out.push(this.byteIds[b]!);
      }
    }
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecial ?? true;
    const bytes: number[] = [];
    let first = true;
    for (const id of ids) {
      const type = this.vocab.types[id];
      const tok = this.vocab.tokens[id];
      if (tok === undefined) throw new Error(`token id ${id} is outside the vocabulary (${this.vocabSize})`);
      if (type === TokenType.CONTROL || type === TokenType.UNKNOWN) {
        if (!skip) bytes.push(...Buffer.from(tok, "utf8"));
        continue;
      }
      if (type === TokenType.BYTE) {
        bytes.push(Number.parseInt(tok.slice(3, 5), 16));
      } else {
        let piece = tok.replaceAll("▁", " ");
        // The dummy prefix added by encode() is not part of the text.
        if (first && this.vocab.addSpacePrefix && piece.startsWith(" ")) piece = piece.slice(1);
        bytes.push(...Buffer.from(piece, "utf8"));
      }
      first = false;
    }
    return Buffer.from(bytes).toString("utf8");
  }
}
