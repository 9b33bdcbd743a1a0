/** The one tokenizer contract used by prompts, verbalizers, loaders and backends. */
export interface EncodeOptions {
  /** Prepend BOS. Defaults to the tokenizer's own setting (add_bos_token). */
  addBos?: boolean;
}

export interface DecodeOptions {
  /** Drop control tokens such as <s> and </s>. Default true. */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  /** "spm": SentencePiece-style BPE with byte fallback (Llama 2); "bpe": byte-level BPE (Llama 3, Qwen2, SmolLM). */
  readonly kind: "spm" | "bpe" | "hf";
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Whether encode() adds BOS when not told otherwise. */
  readonly addBosByDefault: boolean;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

/** GGUF tokenizer.ggml.token_type values (llama_token_type). */
export enum TokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}
