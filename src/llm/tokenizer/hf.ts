/** tokenizer.json (+ tokenizer_config.json) through @huggingface/tokenizers, behind our Tokenizer contract. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as HfTokenizerImpl } from "@huggingface/tokenizers";
import { InputError } from "../../util/errors.js";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./types.js";

function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return null;
}

export class HfTokenizer implements Tokenizer {
  readonly kind = "hf" as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly addBosByDefault: boolean;
  private readonly impl: HfTokenizerImpl;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}) {
    this.impl = new HfTokenizerImpl(tokenizerJson, tokenizerConfig);
    this.vocabSize = this.impl.get_vocab(true).size;
    const bos = tokenContent(tokenizerConfig.bos_token);
    const eos = tokenContent(tokenizerConfig.eos_token);
    this.bosId = bos === null ? null : (this.impl.token_to_id(bos) ?? null);
    this.eosId = eos === null ? null : (this.impl.token_to_id(eos) ?? null);
    // Whether the post-processor adds BOS is what the tokenizer itself does with add_special_tokens.
    const probe = this.impl.encode("a", { add_special_tokens: true }).ids;
    this.addBosByDefault = this.bosId !== null && probe[0] === this.bosId;
  }

  static fromFolder(dir: string): HfTokenizer {
    const path = join(dir, "tokenizer.json");
    if (!existsSync(path)) throw new InputError(`${dir}: no tokenizer.json`);
    const read = (p: string) => {
      try {
        return JSON.parse(readFileSync(p, "utf8")) as Record<string, unknown>;
      } catch (err) {
        throw new InputError(`${p}: cannot parse (${(err as Error).message})`);
      }
    };
    const configPath = join(dir, "tokenizer_config.json");
    return new HfTokenizer(read(path), existsSync(configPath) ? read(configPath) : {});
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.impl.encode(text, { add_special_tokens: false }).ids;
    const addBos = options.addBos ?? this.addBosByDefault;
    return addBos && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    return this.impl.decode([...ids], { skip_special_tokens: options.skipSpecial ?? true });
  }

  tokenToId(token: string): number | undefined {
    return this.impl.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.impl.id_to_token(id);
  }
}
