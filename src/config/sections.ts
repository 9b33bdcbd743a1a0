/**
 * The config file is a set of top-level sections (data, eval, retriever, ranker, ...). Each part of the
 * project declares its own section here with a zod schema, in its own module, so adding a stage never
 * means editing a central schema. Unknown sections and unknown fields are errors (typos must not be
 * silently ignored).
 */
import { z } from "zod";

export interface ConfigSection<S extends z.ZodType> {
  readonly name: string;
  readonly schema: S;
  /** The validated section (defaults applied) from a resolved config. */
  get(config: ResolvedConfig): z.output<S>;
}

/** Validated config: section name -> validated section value. */
export type ResolvedConfig = Readonly<Record<string, unknown>>;

const sections = new Map<string, ConfigSection<z.ZodType>>();

export function defineConfigSection<S extends z.ZodType>(name: string, schema: S): ConfigSection<S> {
  const existing = sections.get(name);
  if (existing) {
    if (existing.schema !== schema) throw new Error(`config section "${name}" is defined twice`);
    return existing as unknown as ConfigSection<S>;
  }
  const section: ConfigSection<S> = {
    name,
    schema,
    get(config) {
      // A section absent from the file still has its defaults: validate it from {}.
      return (name in config ? config[name] : schema.parse({})) as z.output<S>;
    },
  };
  sections.set(name, section as unknown as ConfigSection<z.ZodType>);
  return section;
}

/** The schema of the whole file from every section defined so far. */
export function configSchema(): z.ZodType<Record<string, unknown>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, section] of sections) shape[name] = section.schema.optional();
  return z.strictObject(shape) as unknown as z.ZodType<Record<string, unknown>>;
}

export function sectionNames(): string[] {
  return [...sections.keys()];
}

export function sectionOf(name: string): ConfigSection<z.ZodType> | undefined {
  return sections.get(name);
}
