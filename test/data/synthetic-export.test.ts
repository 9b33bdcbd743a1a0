import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  exportGeneric,
  generateSynthetic,
  loadDataset,
  preprocess,
  syntheticDataset,
  writeSyntheticCsv,
} from "../../src/data/index.js";
import { tempDir } from "./helpers.js";

describe("generateSynthetic", () => {
  it("is deterministic by seed and has the documented shape", () => {
    const a = generateSynthetic({ numUsers: 50, numItems: 40, numClusters: 4, seed: 7 });
    const b = generateSynthetic({ numUsers: 50, numItems: 40, numClusters: 4, seed: 7 });
    const c = generateSynthetic({ numUsers: 50, numItems: 40, numClusters: 4, seed: 8 });
    expect(a.interactions).toEqual(b.interactions);
    expect(a.interactions).not.toEqual(c.interactions);
    expect(a.titles.size).toBe(40);
    expect(a.titles.get("1")).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+ 1$/);
    expect(new Set(a.interactions.map((r) => r.user)).size).toBe(50);
    const lengths = new Map<string, number>();
    for (const r of a.interactions) lengths.set(r.user, (lengths.get(r.user) ?? 0) + 1);
    for (const len of lengths.values()) {
      expect(len).toBeGreaterThanOrEqual(10);
      expect(len).toBeLessThanOrEqual(30);
    }
  });

  it("follows the cluster cycle most of the time", () => {
    const s = generateSynthetic({
      numUsers: 200,
      numItems: 100,
      numClusters: 5,
      transitionStrength: 0.9,
      seed: 1,
    });
    let follow = 0;
    let steps = 0;
    for (let k = 1; k < s.interactions.length; k++) {
      const prev = s.interactions[k - 1]!;
      const cur = s.interactions[k]!;
      if (prev.user !== cur.user) continue;
      steps++;
      if (s.itemCluster.get(cur.item) === s.nextCluster[s.itemCluster.get(prev.item)!]) follow++;
    }
    expect(follow / steps).toBeGreaterThan(0.85);
  });

  it("survives the default 5-core with defaults: dense ids equal raw ids", () => {
    const { dataset, stats } = syntheticDataset({ seed: 3 });
    expect(stats.users).toBe(100);
    expect(stats.items).toBe(200);
    expect(dataset.itemIds[17]).toBe("17");
    expect(dataset.userIds[42]).toBe("42");
  });
});

describe("exportGeneric", () => {
  it("round-trips ml-latest-small through the generic reader with identical splits", async () => {
    const dir = tempDir();
    const { dataset } = await loadDataset({ name: "ml-latest-small" }, { cacheDir: join(dir, "cache") });
    const paths = await exportGeneric(dataset, join(dir, "export"));
    const back = await loadDataset(
      { format: "generic", ...paths, name: "ml-latest-small" },
      { noCache: true },
    );
    expect(back.dataset).toEqual(dataset);
  });

  it("round-trips synthetic data written as CSV", async () => {
    const dir = tempDir();
    const data = generateSynthetic({ numUsers: 60, numItems: 50, seed: 11 });
    const files = await writeSyntheticCsv(data, join(dir, "syn"));
    const loaded = await loadDataset({ format: "generic", ...files, name: "syn" }, { noCache: true });
    const direct = preprocess(data, { name: "syn" });
    expect(loaded.dataset).toEqual(direct.dataset);
    const out = await exportGeneric(loaded.dataset, join(dir, "out"));
    const again = await loadDataset({ format: "generic", ...out, name: "syn" }, { noCache: true });
    expect(again.dataset).toEqual(loaded.dataset);
  });
});
