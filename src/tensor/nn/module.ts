import type { Parameter } from "../tensor.js";

/**
 * A tree of named parameters and submodules, like torch.nn.Module. Children register in construction
 * order, which fixes the parameter order; parameters() names each one by its dotted path
 * ("model.lru_blocks.0.lru_layer.in_proj.weight.real").
 */
export class Module {
  private readonly ownParams = new Map<string, Parameter>();
  private readonly children = new Map<string, Module>();
  private isTraining = true;

  protected registerParameter(name: string, p: Parameter): Parameter {
    if (this.ownParams.has(name) || this.children.has(name)) throw new RangeError(`duplicate member ${name}`);
    this.ownParams.set(name, p);
    return p;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    if (this.ownParams.has(name) || this.children.has(name)) throw new RangeError(`duplicate member ${name}`);
    this.children.set(name, m);
    return m;
  }

  /** Every parameter with its full dotted name (also written to Parameter.name). */
  namedParameters(prefix = ""): Array<[string, Parameter]> {
    const out: Array<[string, Parameter]> = [];
    for (const [n, p] of this.ownParams) {
      p.name = prefix + n;
      out.push([p.name, p]);
    }
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  modules(): Module[] {
    return [this, ...[...this.children.values()].flatMap((m) => m.modules())];
  }

  get training(): boolean {
    return this.isTraining;
  }

  train(on = true): this {
    for (const m of this.modules()) m.isTraining = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets every gradient to null (the next backward allocates fresh zeros). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Named copies of all weights, ready for saveSafetensors. */
  stateDict(): Map<string, { shape: number[]; data: Float32Array }> {
    return new Map(
      this.namedParameters().map(([n, p]) => [n, { shape: [...p.shape], data: p.data.slice() }]),
    );
  }

  /** Copies weights in by name; every parameter must be present with its exact shape, extras are errors. */
  loadStateDict(
    state: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
    source = "state",
  ): void {
    const params = this.namedParameters();
    const names = new Set(params.map(([n]) => n));
    const extra = [...state.keys()].filter((k) => !names.has(k));
    if (extra.length > 0)
      throw new RangeError(`${source}: unexpected weights ${extra.slice(0, 5).join(", ")}`);
    for (const [n, p] of params) {
      const w = state.get(n);
      if (!w) throw new RangeError(`${source}: missing weight ${n}`);
      if (w.shape.length !== p.shape.length || w.shape.some((d, i) => d !== p.shape[i])) {
        throw new RangeError(`${source}: weight ${n} has shape [${w.shape}], model expects [${p.shape}]`);
      }
    }
    for (const [n, p] of params) p.data.set(state.get(n)!.data);
  }
}

/** Submodules named "0", "1", … (torch.nn.ModuleList), so checkpoint keys read "blocks.0.…". */
export class ModuleList<M extends Module> extends Module {
  readonly items: readonly M[];

  constructor(items: readonly M[]) {
    super();
    items.forEach((m, i) => {
      this.registerModule(String(i), m);
    });
    this.items = items;
  }
}
