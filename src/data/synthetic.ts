import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.js";
import { csvField } from "./io/csv.js";
import { type PreprocessOptions, type PreprocessResult, preprocess } from "./preprocess.js";
import type { RawInteraction } from "./raw.js";

/**
 * Synthetic datasets with known sequential structure, for tests and demos.
 *
 * Items 1..numItems are split into numClusters clusters (item i is in cluster (i-1) % numClusters). The
 * clusters form one cycle in a seeded random order (`nextCluster`). Each user starts in a random cluster and
 * at every step moves to the successor cluster with probability `transitionStrength`, otherwise to a
 * uniformly random cluster; within the cluster it takes the item it has not seen yet that has been used
 * least so far (ties broken at random), which keeps item popularity even so that items survive the 5-core
 * filter. A model that learns "next cluster follows this one" beats popularity by a wide margin.
 *
 * Titles are cluster words plus the item's number in its cluster: "Crimson Harbor 12". Raw ids are decimal
 * strings ("1".."numUsers", "1".."numItems"), so when nothing is filtered the dense ids equal the raw ids.
 * Timestamps increase strictly within a user (no ties). Everything is deterministic given the seed.
 */
export interface SyntheticOptions {
  numUsers?: number;
  numItems?: number;
  numClusters?: number;
  /** Shortest user sequence (default 10; keep >= 5 to survive the 5-core filter). */
  minSeqLength?: number;
  /** Longest user sequence (default 30, capped at numItems). */
  maxSeqLength?: number;
  /** Probability of moving to the successor cluster at each step, default 0.8. */
  transitionStrength?: number;
  seed?: number;
  /** First timestamp (seconds), default 1_600_000_000. */
  startTime?: number;
}

export interface SyntheticData {
  interactions: RawInteraction[];
  /** item id -> title */
  titles: Map<string, string>;
  /** item id -> cluster index (0-based) */
  itemCluster: Map<string, number>;
  /** clusterNames[c], e.g. "Crimson Harbor" */
  clusterNames: string[];
  /** nextCluster[c]: the successor of cluster c in the cycle */
  nextCluster: number[];
  /** The options with defaults filled in. */
  options: Required<SyntheticOptions>;
}

const ADJECTIVES = [
  "Crimson",
  "Silent",
  "Golden",
  "Hidden",
  "Frozen",
  "Electric",
  "Velvet",
  "Broken",
  "Midnight",
  "Emerald",
  "Wandering",
  "Iron",
  "Crystal",
  "Scarlet",
  "Hollow",
  "Radiant",
  "Savage",
  "Gentle",
  "Ancient",
  "Neon",
  "Bitter",
  "Silver",
  "Wild",
  "Distant",
];
const NOUNS = [
  "Harbor",
  "Forest",
  "Empire",
  "Garden",
  "Horizon",
  "River",
  "Citadel",
  "Desert",
  "Echo",
  "Lantern",
  "Mountain",
  "Orchard",
  "Voyage",
  "Kingdom",
  "Meadow",
  "Signal",
  "Tide",
  "Compass",
  "Canyon",
  "Galaxy",
  "Station",
  "Labyrinth",
  "Valley",
  "Archive",
];

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function clusterName(c: number): string {
  const a = ADJECTIVES[c % ADJECTIVES.length]!;
  const n = NOUNS[(c + Math.floor(c / ADJECTIVES.length) * 7) % NOUNS.length]!;
  const round = Math.floor(c / (ADJECTIVES.length * NOUNS.length));
  return round > 0 ? `${a} ${n} ${round + 1}` : `${a} ${n}`;
}

export function generateSynthetic(options: SyntheticOptions = {}): SyntheticData {
  const o: Required<SyntheticOptions> = {
    numUsers: options.numUsers ?? 100,
    numItems: options.numItems ?? 200,
    numClusters: options.numClusters ?? 8,
    minSeqLength: options.minSeqLength ?? 10,
    maxSeqLength: options.maxSeqLength ?? 30,
    transitionStrength: options.transitionStrength ?? 0.8,
    seed: options.seed ?? 0,
    startTime: options.startTime ?? 1_600_000_000,
  };
  const { numUsers, numItems } = o;
  const numClusters = Math.max(1, Math.min(o.numClusters, numItems));
  o.numClusters = numClusters;
  if (!Number.isInteger(numUsers) || numUsers < 1)
    throw new RangeError("numUsers must be a positive integer");
  if (!Number.isInteger(numItems) || numItems < 1)
    throw new RangeError("numItems must be a positive integer");
  const maxLen = Math.min(o.maxSeqLength, numItems);
  const minLen = Math.min(o.minSeqLength, maxLen);
  if (minLen < 1) throw new RangeError("minSeqLength must be >= 1");
  const rand = mulberry32(o.seed * 0x9e3779b1 + 1);
  const randInt = (n: number): number => Math.floor(rand() * n);

  // cluster cycle in random order
  const perm = Array.from({ length: numClusters }, (_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = randInt(i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const nextCluster = new Array<number>(numClusters);
  for (let k = 0; k < numClusters; k++) nextCluster[perm[k]!] = perm[(k + 1) % numClusters]!;

  const members: number[][] = Array.from({ length: numClusters }, () => []);
  const titles = new Map<string, string>();
  const itemCluster = new Map<string, number>();
  const clusterNames = Array.from({ length: numClusters }, (_, c) => clusterName(c));
  for (let i = 1; i <= numItems; i++) {
    const c = (i - 1) % numClusters;
    members[c]!.push(i);
    titles.set(String(i), `${clusterNames[c]} ${members[c]!.length}`);
    itemCluster.set(String(i), c);
  }

  const used = new Int32Array(numItems + 1);
  const interactions: RawInteraction[] = [];
  for (let u = 1; u <= numUsers; u++) {
    const len = minLen + randInt(maxLen - minLen + 1);
    const seen = new Uint8Array(numItems + 1);
    let cluster = randInt(numClusters);
    let t = o.startTime + randInt(1_000_000);
    for (let step = 0; step < len; step++) {
      if (step > 0) cluster = rand() < o.transitionStrength ? nextCluster[cluster]! : randInt(numClusters);
      let item = pickLeastUsed(members[cluster]!, seen, used, rand);
      if (item === 0) {
        // cluster exhausted for this user: take the least-used unseen item of the following clusters
        for (let k = 1; k < numClusters && item === 0; k++) {
          cluster = nextCluster[cluster]!;
          item = pickLeastUsed(members[cluster]!, seen, used, rand);
        }
        if (item === 0) break;
      }
      seen[item] = 1;
      used[item]!++;
      t += 60 + randInt(3600);
      interactions.push({ user: String(u), item: String(item), timestamp: t, rating: 1 + randInt(5) });
    }
  }
  return { interactions, titles, itemCluster, clusterNames, nextCluster, options: o };
}

function pickLeastUsed(items: number[], seen: Uint8Array, used: Int32Array, rand: () => number): number {
  let best = 0;
  let bestCount = Number.POSITIVE_INFINITY;
  let ties = 0;
  for (const i of items) {
    if (seen[i]) continue;
    const c = used[i]!;
    if (c < bestCount) {
      best = i;
      bestCount = c;
      ties = 1;
    } else if (c === bestCount) {
      ties++;
      if (rand() * ties < 1) best = i; // reservoir choice among ties
    }
  }
  return best;
}

/** Generates and preprocesses in one call (5-core etc. as for real data): a ready Dataset for tests. */
export function syntheticDataset(
  options: SyntheticOptions = {},
  preprocessOptions: PreprocessOptions = {},
): PreprocessResult {
  const data = generateSynthetic(options);
  return preprocess(data, { name: `synthetic-${data.options.seed}`, ...preprocessOptions });
}

/** Writes synthetic data as generic CSV files (interactions.csv: user,item,timestamp,rating; items.csv). */
export async function writeSyntheticCsv(
  data: Pick<SyntheticData, "interactions" | "titles">,
  dir: string,
): Promise<{ interactions: string; items: string }> {
  const inter = join(dir, "interactions.csv");
  const items = join(dir, "items.csv");
  const lines = ["user,item,timestamp,rating"];
  for (const r of data.interactions) {
    lines.push(`${csvField(r.user)},${csvField(r.item)},${r.timestamp},${r.rating ?? ""}`);
  }
  await writeFileAtomic(inter, `${lines.join("\n")}\n`);
  const itemLines = ["item,title"];
  for (const [id, title] of data.titles) itemLines.push(`${csvField(id)},${csvField(title)}`);
  await writeFileAtomic(items, `${itemLines.join("\n")}\n`);
  return { interactions: inter, items };
}
