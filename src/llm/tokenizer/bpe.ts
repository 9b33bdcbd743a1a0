/**
 * Byte-level BPE (GPT-2 family: Llama 3, Qwen2, SmolLM), as stored in GGUF with tokenizer.ggml.model = "gpt2".
 * Text is split by the pre-tokenizer regex named by tokenizer.ggml.pre, each piece's UTF-8 bytes are mapped
 * to printable code points (GPT-2's bytes_to_unicode), and merges are applied lowest rank first.
 */
import { splitOnSpecial, userDefinedTokens } from "./special.js";
import { type DecodeOptions, type EncodeOptions, type Tokenizer, TokenType } from "./types.js";

export interface BpeVocab {
  tokens: string[];
  types: number[];
  /** "left right" pairs, rank = index. */
  merges: string[];
  /** tokenizer.ggml.pre, e.g. "llama-bpe", "qwen2", "smollm", "gpt-2". */
  pre: string;
  bosId: number | null;
  eosId: number | null;
  addBos: boolean;
}

const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
// Node 20 has no (?i:) groups, so the case-insensitive contractions are spelled out.
const CONTRACTIONS = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";
const LLAMA3_SPLIT = new RegExp(
  `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  "gu",
);
const QWEN2_SPLIT = new RegExp(
  `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  "gu",
);
const DIGITS_SPLIT = /\p{N}/gu;

/** Pre-tokenizer names llama.cpp treats as Llama 3: ignore_merges on, BOS added by default. */
export const LLAMA3_PRE: ReadonlySet<string> = new Set(["llama3", "llama-v3", "llama-bpe", "falcon3"]);

/** Regexes applied in sequence for each llama.cpp pre-tokenizer name (llama-vocab.cpp). */
export function preTokenizerRegexes(pre: string): RegExp[] {
  switch (pre) {
    case "gpt-2":
    case "gpt2":
      return [GPT2_SPLIT];
    case "qwen2":
    case "deepseek-r1-qwen":
      return [QWEN2_SPLIT];
    case "smollm":
      return [DIGITS_SPLIT, GPT2_SPLIT];
    default:
      // llama.cpp's default, and "llama-bpe" (Llama 3).
      return [LLAMA3_SPLIT];
  }
}

/** Splits keeping both matches and the text between them, applying each regex to every piece. */
export function preTokenize(text: string, regexes: readonly RegExp[]): string[] {
  let pieces = [text];
  for (const re of regexes) {
    const next: string[] = [];
    for (const piece of pieces) {
      let last = 0;
      for (const m of piece.matchAll(re)) {
        if (m.index > last) next.push(piece.slice(last, m.index));
        if (m[0].length > 0) next.push(m[0]);
        last = m.index + m[0].length;
      }
      if (last < piece.length) next.push(piece.slice(last));
    }
    pieces = next;
  }
  return pieces;
}

/** GPT-2's reversible byte → printable code point table. */
export function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  return table;
}

export class ByteLevelBpeTokenizer implements Tokenizer {
  readonly kind = "bpe" as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly addBosByDefault: boolean;
  private readonly ids = new Map<string, number>();
  private readonly ranks = new Map<string, number>();
  private readonly byteChar = bytesToUnicode();
  private readonly charByte = new Map<string, number>();
  private readonly regexes: RegExp[];
  private readonly userDefined: string[];
  private readonly cache = new Map<string, number[]>();
  private readonly ignoreMerges: boolean;

  constructor(private readonly vocab: BpeVocab) {
    this.vocabSize = vocab.tokens.length;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.addBosByDefault = vocab.addBos;
    vocab.tokens.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
    vocab.merges.forEach((m, i) => {
      this.ranks.set(m, i);
    });
    this.byteChar.forEach((c, b) => {
      this.charByte.set(c, b);
    });
    this.regexes = preTokenizerRegexes(vocab.pre);
    this.ignoreMerges = LLAMA3_PRE.has(vocab.pre);
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
    for (const fragment of splitOnSpecial(text, this.userDefined)) {
      if (fragment.special) {
        out.push(this.ids.get(fragment.text)!);
        continue;
      }
      for (const piece of preTokenize(fragment.text, this.regexes)) out.push(...this.encodeWord(piece));
    }
    return out;
  }

  private encodeWord(piece: string): number[] {
    const cached = this.cache.get(piece);
    if (cached) return cached;
    let parts = Array.from(Buffer.from(piece, "utf8"), (b) => this.byteChar[b]!);
    // Llama 3 (tokenizer.json ignore_merges; llama.cpp does the same for llama-bpe): a piece that is
    // itself a token is taken whole, even if the merges would split it differently.
    if (this.ignoreMerges) {
      const whole = this.ids.get(parts.join(""));
      if (whole !== undefined) return [whole];
    }
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < parts.length; i++) {
        const rank = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const a = parts[best]!;
      const b = parts[best + 1]!;
      // Merge every occurrence of the winning pair, left to right (HF and llama.cpp agree on this).
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else {
          merged.push(parts[i]!);
        }
      }
      parts = merged;
    }
    const ids: number[] = [];
    for (const p of parts) {
      const id = this.ids.get(p);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      for (const ch of p) {
        const cid = this.ids.get(ch);
        if (cid === undefined)
          throw new Error(`byte-level BPE vocabulary has no token for ${JSON.stringify(ch)}`);
        ids.push(cid);
      }
    }
    if (this.cache.size < 100_000) this.cache.set(piece, ids);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecial ?? true;
    const bytes: number[] = [];
    for (const id of ids) {
      const tok = this.vocab.tokens[id];
      if (tok === undefined) throw new Error(`token id ${id} is outside the vocabulary (${this.vocabSize})`);
      const type = this.vocab.types[id];
      if (type === TokenType.CONTROL || type === TokenType.USER_DEFINED) {
        if (type === TokenType.CONTROL && skip) continue;
        bytes.push(...Buffer.from(tok, "utf8"));
        continue;
      }
      for (const ch of tok) {
        const b = this.charByte.get(ch);
        if (b === undefined) bytes.push(...Buffer.from(ch, "utf8"));
        else bytes.push(b);
      }
    }
    return Buffer.from(bytes).toString("utf8");
  }
}
