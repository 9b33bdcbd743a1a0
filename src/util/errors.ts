/** An error caused by the user's input (file, flag, config field); the CLI prints its message without a stack. */
export class InputError extends Error {
  override name = "InputError";
}

/** A malformed row in an input file. `line` is 1-based. */
export class RowError extends InputError {
  override name = "RowError";
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

/**
 * Library option objects are checked like config files: a key the defaults do not have is a typo (or an option
 * of another version), never silently ignored. `what` names the object in the message.
 */
export function rejectUnknownKeys(given: object | undefined, known: object, what: string): void {
  for (const key of Object.keys(given ?? {}))
    if (!(key in known))
      throw new InputError(`${what}: unknown option "${key}" (known: ${Object.keys(known).join(", ")})`);
}
