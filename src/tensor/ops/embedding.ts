import { kernels } from "../kernels/index.js";
import { allocFloat32Unset } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { type Shape, sizeOf, Tensor } from "../tensor.js";

/** Rows of `table` [V, D] picked by `ids` (shape `idsShape`) → [...idsShape, D]. */
export function embedding(table: Tensor, ids: Int32Array, idsShape: Shape = [ids.length]): Tensor {
  if (table.rank !== 2) throw new RangeError(`embedding: table must be 2-D, got [${table.shape}]`);
  if (sizeOf(idsShape) !== ids.length)
    throw new RangeError(`embedding: ids shape [${idsShape}] ≠ ${ids.length} ids`);
  const [V, D] = table.shape as [number, number];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= V) throw new RangeError(`embedding: id ${id} at position ${i} outside [0, ${V})`);
  }
  const k = kernels();
  const out = allocFloat32Unset(ids.length * D);
  k.embeddingGather(table.data, ids, D, out);
  const t = new Tensor(out, [...idsShape, D]);
  if (needsGrad(table)) record(t, (g) => k.embeddingScatterAdd(g, ids, D, table.gradBuffer()));
  return t;
}
