/**
 * A trained retriever on disk: model.safetensors (weights by parameter name) + model.json
 * ({model, config, parameters}), enough to rebuild it through the registry and load it.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { loadSafetensorsFile, type NamedArray, saveSafetensors } from "../tensor/safetensors.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import { createRetriever } from "./registry.js";
import type { SequentialRetriever, WeightLike } from "./types.js";

export interface ModelDescription {
  model: string;
  config: Record<string, unknown>;
  parameters: { name: string; shape: number[] }[];
}

/** Copies of every parameter, keyed `${prefix}${name}` (copies: the model keeps training afterwards). */
export function snapshotWeights(params: readonly WeightLike[], prefix = ""): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  for (const p of params) out.set(`${prefix}${p.name}`, { shape: [...p.shape], data: p.data.slice() });
  return out;
}

/**
 * Copies `${prefix}${name}` tensors into the parameters. Every parameter must be present with its exact
 * shape, and (for a whole file) no unknown tensor may be left over, so a mismatched file fails loudly.
 */
export function restoreWeights(
  params: readonly WeightLike[],
  tensors: ReadonlyMap<string, NamedArray>,
  source: string,
  prefix = "",
): void {
  for (const p of params) {
    const t = tensors.get(`${prefix}${p.name}`);
    if (!t) throw new InputError(`${source}: no tensor "${prefix}${p.name}"`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new InputError(
        `${source}: tensor "${prefix}${p.name}" has shape [${t.shape}], model expects [${p.shape}]`,
      );
    }
  }
  for (const p of params) p.data.set(tensors.get(`${prefix}${p.name}`)!.data);
}

export function describeModel(model: SequentialRetriever): ModelDescription {
  return {
    model: model.modelName,
    config: { ...model.config },
    parameters: model.parameters().map((p) => ({ name: p.name, shape: [...p.shape] })),
  };
}

/** Writes weights first, then model.json: a model.json on disk always has its weights beside it. */
export async function saveModel(
  model: SequentialRetriever,
  weightsPath: string,
  jsonPath: string,
): Promise<void> {
  saveSafetensors(weightsPath, snapshotWeights(model.parameters()), { model: model.modelName });
  await writeJsonAtomic(jsonPath, describeModel(model));
}

export async function readModelDescription(jsonPath: string): Promise<ModelDescription> {
  if (!existsSync(jsonPath)) throw new InputError(`no trained model: ${jsonPath} does not exist`);
  let value: unknown;
  try {
    value = JSON.parse(await readFile(jsonPath, "utf8"));
  } catch (err) {
    throw new InputError(`${jsonPath}: not valid JSON (${(err as Error).message})`);
  }
  const o = value as Partial<ModelDescription> | null;
  if (typeof o !== "object" || o === null || typeof o.model !== "string") {
    throw new InputError(`${jsonPath}: field "model": expected a model name`);
  }
  if (typeof o.config !== "object" || o.config === null) {
    throw new InputError(`${jsonPath}: field "config": expected an object`);
  }
  return { model: o.model, config: o.config, parameters: o.parameters ?? [] };
}

/** Rebuilds the model from model.json through the registry and loads its weights. */
export async function loadModel(weightsPath: string, jsonPath: string): Promise<SequentialRetriever> {
  const desc = await readModelDescription(jsonPath);
  const model = createRetriever(desc.model, desc.config as { numItems: number });
  const file = loadSafetensorsFile(weightsPath);
  const params = model.parameters();
  const known = new Set(params.map((p) => p.name));
  const extra = [...file.tensors.keys()].filter((k) => !known.has(k));
  if (extra.length > 0)
    throw new InputError(
      `${weightsPath}: tensors the ${desc.model} model does not have: ${extra.join(", ")}`,
    );
  restoreWeights(params, file.tensors, weightsPath);
  model.setTraining(false);
  return model;
}
