/**
 * Retriever models by name. Adding a model = one file exporting a factory + one `register` line below.
 *
 * A factory receives the resolved options (numItems, seed, maxLen, dropout and any model-specific keys the
 * user set) and must also accept its own `model.config` back: that is how a run folder's model.json
 * rebuilds the model before its weights are loaded.
 */
import { InputError } from "../util/errors.js";
import { createLru } from "./lru.js";
import { createPop } from "./pop.js";
import type { SequentialRetriever } from "./types.js";

export interface RetrieverOptions {
  numItems: number;
  [key: string]: unknown;
}

export type RetrieverFactory = (options: RetrieverOptions) => SequentialRetriever;

export interface RetrieverEntry {
  readonly name: string;
  readonly description: string;
  readonly create: RetrieverFactory;
}

const registry = new Map<string, RetrieverEntry>();

export function registerRetriever(name: string, description: string, create: RetrieverFactory): void {
  if (registry.has(name)) throw new Error(`retriever "${name}" is already registered`);
  registry.set(name, { name, description, create });
}

export function retrieverNames(): string[] {
  return [...registry.keys()].sort();
}

export function retrieverEntry(name: string): RetrieverEntry {
  const entry = registry.get(name);
  if (!entry) {
    throw new InputError(`unknown retriever model "${name}"; available: ${retrieverNames().join(", ")}`);
  }
  return entry;
}

export function createRetriever(name: string, options: RetrieverOptions): SequentialRetriever {
  const model = retrieverEntry(name).create(options);
  if (model.modelName !== name) {
    throw new Error(`retriever factory "${name}" built a model named "${model.modelName}"`);
  }
  return model;
}

registerRetriever("pop", "learned item-popularity bias (sequence-independent baseline)", (o) =>
  createPop({ numItems: o.numItems }),
);
registerRetriever(
  "lru",
  "LRURec: linear recurrent units (Yue et al. 2023), the official LlamaRec retriever",
  (o) =>
    createLru({
      numItems: o.numItems,
      hiddenDim: o.hiddenDim as number | undefined,
      numBlocks: o.numBlocks as number | undefined,
      dropout: o.dropout as number | undefined,
      attnDropout: o.attnDropout as number | undefined,
      seed: o.seed as number | undefined,
    }),
);
