import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { modelInfoCommand } from "../../src/cli/commands/model-info.js";
import { GgmlType } from "../../src/llm/gguf/types.js";
import { describeModel } from "../../src/llm/info.js";
import { scratchConfig } from "../../src/llm/model/scratch.js";
import { describeRankerModel, formatRankerModelInfo } from "../../src/ranker/model-info.js";
import {
  builtinSpmVocab,
  randomLlamaWeights,
  writeTinyLlama,
  writeWeightsGguf,
} from "../fixtures/tiny-llama.js";
import { TINY_LLAMA2_GGUF } from "./shared-model.js";

describe("model info", () => {
  it("describes the GGUF file and the HF folder of the same tiny model identically", async () => {
    const paths = await writeTinyLlama(mkdtempSync(join(tmpdir(), "llamarec-info-")));
    const g = describeRankerModel(paths.gguf);
    const h = describeRankerModel(paths.hfDir);
    expect(g.format).toBe("gguf");
    expect(h.format).toBe("hf");
    expect(g.config).toEqual(h.config);
    expect(g.parameters).toBe(h.parameters);
    expect(g.tensorTypes).toEqual({ F32: { tensors: 21, parameters: g.parameters } });
    expect(g.letterIds).toEqual(h.letterIds);
    expect(g.letterIds!.answerPosition).toHaveLength(20);
    const text = formatRankerModelInfo(g);
    expect(text).toContain("layers 2, hidden 64, ffn 176, heads 4 (kv 2, dim 16), vocab 568");
    expect(text).toContain("tokenizer: spm, vocab 568");
    expect(text).toContain("letter ids A–T (answer position): 292,293");
  });

  it("counts mixed tensor types (F16 matrices, F32 norms)", () => {
    const dir = mkdtempSync(join(tmpdir(), "llamarec-info-"));
    const vocab = builtinSpmVocab();
    const config = scratchConfig("scratch:tiny", { size: vocab.tokens.length, bosId: 1, eosId: 2 });
    writeWeightsGguf(join(dir, "f16.gguf"), config, randomLlamaWeights(config), vocab, {
      matrixType: GgmlType.F16,
    });
    const info = describeModel(join(dir, "f16.gguf"));
    expect(info.tensorTypes.F16!.tensors).toBe(16);
    expect(info.tensorTypes.F32!.tensors).toBe(5);
  });

  it("the CLI command prints the report or JSON, and names a missing path", async () => {
    const paths = await writeTinyLlama(mkdtempSync(join(tmpdir(), "llamarec-info-")));
    let text = "";
    const out = new Writable({
      write(chunk, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    });
    const ctx = { args: [paths.gguf], opts: { json: true }, config: {} as never, out };
    await modelInfoCommand.run(ctx);
    expect(JSON.parse(text).config.numLayers).toBe(2);
    await expect(modelInfoCommand.run({ ...ctx, args: ["/nonexistent/model.gguf"] })).rejects.toThrow(
      /no such file or folder/,
    );
  });

  it("reports both letter id sets for the Llama 2 tokenizer", () => {
    const info = describeRankerModel(TINY_LLAMA2_GGUF);
    expect(info.letterIds!.answerPosition!.slice(0, 3)).toEqual([29909, 29933, 29907]);
    expect(info.letterIds!.isolated!.slice(0, 3)).toEqual([319, 350, 315]);
    expect(info.tensorTypes.F16!.tensors).toBe(9);
  });
});
