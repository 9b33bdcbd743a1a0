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
