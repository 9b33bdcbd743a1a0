/**
 * Retriever models by name. Each model owns its configuration: an entry is
 * `{ name, description, schema, create }`, where `schema` is a zod object of the model's own options with
 * their defaults (what a config file's `retriever.options` and the derived `llamarec train retriever` flags
 * may set) and `create` builds the model from those options plus what the trainer hands every model
 * (`RetrieverContext`: numItems, maxLen for position embeddings, seed). Adding a model = one file exporting
 * its entry + one `registerRetriever` line below; neither the CLI nor the trainer changes.
 *
 * `create` must also accept its own `model.config` back: that is how a run folder's model.json rebuilds the
 * model before its weights are loaded (createRetriever strips the context keys before validating options).
 */
import { z } from "zod";
import { InputError } from "../util/errors.js";
import { bert4recEntry } from "./bert4rec.js";
import { createLru } from "./lru.js";
import { narmEntry } from "./narm.js";
import { createPop } from "./pop.js";
import { sasrecEntry } from "./sasrec.js";
import type { SequentialRetriever } from "./types.js";

/** What the trainer hands every model, whatever its options. */
export interface RetrieverContext {
  numItems: number;
  /** Training/evaluation sequence length (position embeddings need it). */
  maxLen: number;
  /** Seed of initialisation and of the model's own random streams (dropout, masking). */
  seed: number;
}

export const CONTEXT_KEYS = ["numItems", "maxLen", "seed"] as const;

/** Options given to createRetriever: the model's own (validated by its schema) and the context. */
export interface RetrieverOptions {
  numItems: number;
  maxLen?: number;
  seed?: number;
  [key: string]: unknown;
}

// biome-ignore lint/suspicious/noExplicitAny: entries differ in their option types; each is checked by its schema
export type AnyObjectSchema = z.ZodObject<any>;

export interface RetrieverEntry<S extends AnyObjectSchema = AnyObjectSchema> {
  readonly name: string;
  readonly description: string;
  /** The model's own options with defaults; a strict object (an unknown key is an error). */
  readonly schema: S;
  readonly create: (config: z.output<S> & RetrieverContext) => SequentialRetriever;
}

/** Typed helper for model files: `export const fooEntry = defineRetriever({ ... })`. */
export function defineRetriever<S extends AnyObjectSchema>(entry: RetrieverEntry<S>): RetrieverEntry<S> {
  return entry;
}

const registry = new Map<string, RetrieverEntry>();

/**
 * Registers a model. The three-argument form (name, description, create) registers a model without an
 * option schema: its options pass through unvalidated (tests' stand-in models use it).
 */
export function registerRetriever<S extends AnyObjectSchema>(entry: RetrieverEntry<S>): void;
export function registerRetriever(
  name: string,
  description: string,
  create: (options: RetrieverOptions & RetrieverContext) => SequentialRetriever,
): void;
export function registerRetriever<S extends AnyObjectSchema>(
  entryOrName: RetrieverEntry<S> | string,
  description?: string,
  create?: (options: RetrieverOptions & RetrieverContext) => SequentialRetriever,
): void {
  const entry =
    typeof entryOrName === "string"
      ? { name: entryOrName, description: description ?? "", schema: z.looseObject({}), create: create! }
      : entryOrName;
  if (registry.has(entry.name)) throw new Error(`retriever "${entry.name}" is already registered`);
  registry.set(entry.name, entry as unknown as RetrieverEntry);
}

export function retrieverNames(): string[] {
  return [...registry.keys()].sort();
}

export function retrieverEntries(): RetrieverEntry[] {
  return retrieverNames().map((n) => registry.get(n)!);
}

export function retrieverEntry(name: string): RetrieverEntry {
  const entry = registry.get(name);
  if (!entry) {
    throw new InputError(`unknown retriever model "${name}"; available: ${retrieverNames().join(", ")}`);
  }
  return entry;
}

/**
 * A model's options validated by its schema, defaults filled in (context keys excluded). `source` names
 * where they came from in the error (e.g. "retriever.options").
 */
export function resolveModelOptions(
  name: string,
  options: Record<string, unknown>,
  source = "model options",
): Record<string, unknown> {
  const entry = retrieverEntry(name);
  const own = Object.fromEntries(
    Object.entries(options).filter(
      ([k, v]) => v !== undefined && !(CONTEXT_KEYS as readonly string[]).includes(k),
    ),
  );
  const parsed = entry.schema.safeParse(own);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === "unrecognized_keys") {
      const known = Object.keys(entry.schema.shape as object);
      throw new InputError(
        `${source}: ${name} has no option "${issue.keys.join('", "')}" (its options: ${known.join(", ") || "none"})`,
      );
    }
    throw new InputError(`${source}: ${name} option "${issue.path.join(".")}": ${issue.message}`);
  }
  return parsed.data as Record<string, unknown>;
}

export function createRetriever(name: string, options: RetrieverOptions): SequentialRetriever {
  const entry = retrieverEntry(name);
  const own = resolveModelOptions(name, options);
  const context: RetrieverContext = {
    numItems: options.numItems,
    maxLen: options.maxLen ?? 200,
    seed: options.seed ?? 42,
  };
  const model = entry.create({ ...own, ...context });
  if (model.modelName !== name) {
    throw new Error(`retriever factory "${name}" built a model named "${model.modelName}"`);
  }
  return model;
}

const probability = z.number().min(0).lt(1);

registerRetriever(
  defineRetriever({
    name: "pop",
    description: "learned item-popularity bias (sequence-independent baseline)",
    schema: z.strictObject({}),
    create: (o) => createPop({ numItems: o.numItems }),
  }),
);
registerRetriever(
  defineRetriever({
    name: "lru",
    description: "LRURec: linear recurrent units (Yue et al. 2023), the official LlamaRec retriever",
    // Defaults live in lru.ts (resolveLruConfig); unset options take them.
    schema: z.strictObject({
      hiddenDim: z.number().int().positive().optional().describe("hidden size (official 64)"),
      numBlocks: z.number().int().positive().optional().describe("LRU blocks (official 2)"),
      dropout: probability.optional().describe("embedding and feed-forward dropout (official 0.2)"),
      attnDropout: probability.optional().describe("dropout on the LRU layer output (default: dropout)"),
    }),
    create: (o) =>
      createLru({
        numItems: o.numItems,
        hiddenDim: o.hiddenDim,
        numBlocks: o.numBlocks,
        dropout: o.dropout,
        attnDropout: o.attnDropout,
        seed: o.seed,
      }),
  }),
);
registerRetriever(sasrecEntry);
registerRetriever(bert4recEntry);
registerRetriever(narmEntry);

/** One model option as flags and config fields see it (derived from the models' schemas). */
export interface ModelOptionField {
  key: string;
  kind: "number" | "boolean" | "string";
  description: string;
  /** Models that have this option. */
  models: string[];
}

/** Every option of every registered model with a schema, by key (one flag serves every model having it). */
export function modelOptionFields(): ModelOptionField[] {
  const fields = new Map<string, ModelOptionField>();
  for (const entry of retrieverEntries()) {
    for (const [key, schema] of Object.entries(entry.schema.shape as Record<string, z.ZodType>)) {
      const kind = baseKind(schema);
      const existing = fields.get(key);
      if (existing) {
        if (existing.kind !== kind)
          throw new Error(
            `retriever option "${key}" is a ${existing.kind} in one model and a ${kind} in ${entry.name}`,
          );
        existing.models.push(entry.name);
      } else {
        fields.set(key, { key, kind, description: schema.description ?? "", models: [entry.name] });
      }
    }
  }
  return [...fields.values()];
}

function baseKind(schema: z.ZodType): ModelOptionField["kind"] {
  let s = schema as z.ZodType & { def: { type: string; innerType?: z.ZodType } };
  while (s.def.innerType && ["optional", "default", "nullable", "prefault"].includes(s.def.type))
    s = s.def.innerType as typeof s;
  if (s.def.type === "number" || s.def.type === "int") return "number";
  if (s.def.type === "boolean") return "boolean";
  return "string";
}
