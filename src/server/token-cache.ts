/**
 * A tokenizer that remembers the encodings of short texts, for the server's prompt builder: every ranking
 * prompt re-tokenizes its 40 item titles to cut them to the title budget (PromptBuilder.truncateTitle),
 * and a catalogue's titles repeat from request to request. Encoding is deterministic, so a cached answer is
 * the answer; long texts (whole prompts) are passed through. Least recently used entries are dropped
 * beyond `capacity`.
 */
import type { DecodeOptions, EncodeOptions, Tokenizer } from "../llm/tokenizer/types.js";

export interface TokenCacheOptions {
  /** Texts remembered. Default 50,000. */
  capacity?: number;
  /** Longest text (UTF-16 units) that is cached. Default 512. */
  maxLength?: number;
}

export class CachingTokenizer implements Tokenizer {
  readonly kind: Tokenizer["kind"];
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly addBosByDefault: boolean;
  private readonly cache = new Map<string, readonly number[]>();
  private readonly capacity: number;
  private readonly maxLength: number;
  hits = 0;
  misses = 0;

  constructor(
    readonly inner: Tokenizer,
    options: TokenCacheOptions = {},
  ) {
    this.kind = inner.kind;
    this.vocabSize = inner.vocabSize;
    this.bosId = inner.bosId;
    this.eosId = inner.eosId;
    this.addBosByDefault = inner.addBosByDefault;
    this.capacity = Math.max(1, options.capacity ?? 50_000);
    this.maxLength = options.maxLength ?? 512;
  }

  get size(): number {
    return this.cache.size;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (text.length > this.maxLength) return this.inner.encode(text, options);
    const bos = options.addBos ?? this.addBosByDefault;
    const key = bos ? `1${text}` : `0${text}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.hits++;
      this.cache.delete(key); // most recently used last
      this.cache.set(key, hit);
      return hit.slice();
    }
    this.misses++;
    const ids = this.inner.encode(text, { addBos: bos });
    this.cache.set(key, ids.slice());
    if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value as string);
    return ids;
  }

  decode(ids: readonly number[], options?: DecodeOptions): string {
    return this.inner.decode(ids, options);
  }

  tokenToId(token: string): number | undefined {
    return this.inner.tokenToId(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.idToToken(id);
  }
}
