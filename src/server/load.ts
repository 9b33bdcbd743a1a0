/** A run folder → the services the HTTP server composes (catalogue, user-state model, store, ranker). */
import { loadModel } from "../retrievers/model-file.js";
import { loadRunDataset, readRunConfig, runPaths } from "../run/index.js";
import { openStore } from "../store/open.js";
import type { EventStore } from "../store/types.js";
import type { ServingServices } from "./app.js";
import { Catalogue } from "./catalogue.js";
import { openRankerTools, type RankerSetupOptions } from "./ranker-setup.js";
import { type RankingOptions, RankingQueue } from "./ranking.js";
import { stateModelFor } from "./user-state.js";

export interface LoadServingOptions {
  runDir: string;
  /** sqlite:<file> or postgres://…; default sqlite:<run>/serve/events.sqlite. */
  store?: string;
  ranker?: RankerSetupOptions | null;
  ranking?: RankingOptions;
  /** Most popular titles tokenized at start for ranking prompts. Default 20,000. */
  warmTitles?: number;
  log?: (line: string) => void;
}

export interface LoadedServing extends ServingServices {
  description: string;
}

export function defaultStoreSpec(runDir: string): string {
  return `sqlite:${runPaths(runDir).root}/serve/events.sqlite`;
}

export async function loadServing(o: LoadServingOptions): Promise<LoadedServing> {
  const log = o.log ?? (() => {});
  const paths = runPaths(o.runDir);
  const config = await readRunConfig(o.runDir);
  const { dataset } = await loadRunDataset(o.runDir);
  const model = await loadModel(paths.retriever.model, paths.retriever.modelJson);
  const maxLen = Number(config.retriever?.training.maxLen ?? 200);
  const stateModel = stateModelFor(model, maxLen);
  const catalogue = Catalogue.fromDataset(dataset);
  log(
    `retriever ${model.modelName} (${stateModel.incremental ? "incremental state" : `window of ${maxLen}`}) over ${catalogue.numItems} items of ${dataset.name}`,
  );
  let store: EventStore | null = null;
  let ranking: RankingQueue | null = null;
  try {
    store = await openStore(o.store ?? defaultStoreSpec(o.runDir));
    log(`event store: ${store.kind} ${store.location} (${await store.count()} events)`);
    if (o.ranker) {
      const tools = await openRankerTools(o.runDir, o.ranker);
      // Every prompt cuts its titles to the title budget, which tokenizes them: do the most popular
      // titles now (remembered by the prompt builder's caching tokenizer) instead of in requests.
      const started = performance.now();
      const warm = Math.min(catalogue.numItems, o.warmTitles ?? 20_000);
      for (let r = 0; r < warm; r++) tools.prompts.truncateTitle(catalogue.title(catalogue.popular[r]!));
      if (warm > 0)
        log(`${warm} titles tokenized for prompts in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      ranking = new RankingQueue(tools, o.ranking);
      log(
        `ranker: ${tools.backend.name}, model ${tools.model}${tools.adapter ? `, adapter ${tools.adapter}` : ""}`,
      );
    }
  } catch (err) {
    await store?.close();
    throw err;
  }
  return {
    catalogue,
    stateModel,
    store,
    ranking,
    description: `${model.modelName} on ${dataset.name}, ${store.kind} store, ranker ${ranking?.tools.backend.name ?? "none"}`,
  };
}
