/** `llamarec model info <gguf file | hf folder>`: architecture, sizes, tensor types, tokenizer, letter ids. */
import { describeRankerModel, formatRankerModelInfo } from "../../ranker/model-info.js";
import type { CommandSpec } from "../registry.js";

export const modelInfoCommand: CommandSpec = {
  path: ["model", "info"],
  summary: "show a GGUF file's or HF folder's architecture, sizes, tensor types, tokenizer and letter ids",
  configure(cmd) {
    cmd.argument("<model>", "a .gguf file or a Hugging Face model folder").option("--json", "print JSON");
  },
  async run(ctx) {
    const info = describeRankerModel(ctx.args[0]!);
    ctx.out.write(ctx.opts.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatRankerModelInfo(info)}\n`);
  },
};
