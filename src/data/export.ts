import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import type { Dataset } from "./dataset.js";
import { csvField } from "./io/csv.js";

export interface ExportGenericOptions {
  /** File names inside the folder; defaults interactions.csv and items.csv. */
  interactionsFile?: string;
  itemsFile?: string;
}

/**
 * Writes a prepared dataset in the generic format: `interactions.csv` (user,item,timestamp, raw ids, one row
 * per interaction, users in dense-id order) and `items.csv` (item,title, the dataset's items only). A
 * Dataset keeps no timestamps, so `timestamp` is the 1-based position in the user's sequence; loading the
 * files back with the generic reader and the same k-core options gives identical ids and splits. Both files
 * are written atomically.
 */
export async function exportGeneric(
  dataset: Dataset,
  dir: string,
  options: ExportGenericOptions = {},
): Promise<{ interactions: string; items: string }> {
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new InputError(`${dir} is a file; the export needs a folder (a new or existing one)`);
  const interPath = join(dir, options.interactionsFile ?? "interactions.csv");
  const itemsPath = join(dir, options.itemsFile ?? "items.csv");
  const chunks: string[] = ["user,item,timestamp\n"];
  for (let u = 1; u <= dataset.numUsers; u++) {
    const user = csvField(dataset.userIds[u]!);
    const seq = [...dataset.train[u]!, dataset.val[u]!, dataset.test[u]!];
    let block = "";
    for (let p = 0; p < seq.length; p++) block += `${user},${csvField(dataset.itemIds[seq[p]!]!)},${p + 1}\n`;
    chunks.push(block);
  }
  await writeFileAtomic(interPath, chunks.join(""));
  const items: string[] = ["item,title\n"];
  for (let i = 1; i <= dataset.numItems; i++) {
    items.push(`${csvField(dataset.itemIds[i]!)},${csvField(dataset.titles[i]!)}\n`);
  }
  await writeFileAtomic(itemsPath, items.join(""));
  return { interactions: interPath, items: itemsPath };
}
