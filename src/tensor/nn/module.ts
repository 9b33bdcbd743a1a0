import { InputError } from "../../util/errors.js";
import type { Rng } from "../rng.js";
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
  private hasParent = false;

  protected registerParameter(name: string, p: Parameter): Parameter {
    if (this.ownParams.has(name) || this.children.has(name)) throw new RangeError(`duplicate member ${name}`);
    this.ownParams.set(name, p);
    return p;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    if (this.ownParams.has(name) || this.children.has(name)) throw new RangeError(`duplicate member ${name}`);
    if (m.hasParent) throw new RangeError(`module ${name} already belongs to another module`);
    m.hasParent = true;
    this.children.set(name, m);
    return m;
  }

  /**
   * Every parameter with its dotted path below this module. Called on the root module (one without a
   * parent) it also writes the path to Parameter.name, so names are the root's checkpoint keys and
   * listing a submodule never renames anything.
   */
  namedParameters(prefix = ""): Array<[string, Parameter]> {
    const out: Array<[string, Parameter]> = [];
    this.collectParameters(prefix, out);
    if (!this.hasParent) for (const [n, p] of out) p.name = n;
    return out;
  }

  private collectParameters(prefix: string, out: Array<[string, Parameter]>): void {
    for (const [n, p] of this.ownParams) out.push([prefix + n, p]);
    for (const [n, m] of this.children) m.collectParameters(`${prefix}${n}.`, out);
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

  /** The random stream this module itself draws from (dropout), if any. */
  protected ownRng(): Rng | null {
    return null;
  }

  private rngs(): Rng[] {
    return this.modules().flatMap((m) => {
      const r = m.ownRng();
      return r ? [r] : [];
    });
  }

  /**
   * The states of every random stream in the tree (module order), concatenated 4 words each: checkpoint
   * it so a resumed run draws the same dropout masks (the SequentialRetriever getRandomState contract).
   */
  getRandomState(): number[] {
    return this.rngs().flatMap((r) => r.getState());
  }

  setRandomState(state: readonly number[]): void {
    const rngs = this.rngs();
    if (state.length !== 4 * rngs.length) {
      throw new RangeError(
        `random state has ${state.length} words, the model's ${rngs.length} streams need ${4 * rngs.length}`,
      );
    }
    rngs.forEach((r, i) => {
      r.setState(state.slice(4 * i, 4 * i + 4));
    });
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
      throw new InputError(`${source}: unexpected weights ${extra.slice(0, 5).join(", ")}`);
    for (const [n, p] of params) {
      const w = state.get(n);
      if (!w) throw new InputError(`${source}: missing weight ${n}`);
      if (w.shape.length !== p.shape.length || w.shape.some((d, i) => d !== p.shape[i])) {
        throw new InputError(`${source}: weight ${n} has shape [${w.shape}], model expects [${p.shape}]`);
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
