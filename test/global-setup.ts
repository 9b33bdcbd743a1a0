/**
 * Every test's temporary files go under one folder per `vitest` run, removed at the end (issue 7 §4: the
 * suite left ~20 folders, ~40 MB, in the system temporary folder per run). TMPDIR is set before the
 * workers start, so os.tmpdir() in every test (and in child processes they spawn) points here; tests
 * still remove their own folders, this catches the ones that do not or are killed midway.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), "llamarec-tests-"));
  // mkdtemp makes it 0700; the PostgreSQL tests run the server as the `postgres` user (root may not), which
  // must be able to pass through this folder to reach its own data folder below it.
  chmodSync(root, 0o711);
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(root, { recursive: true, force: true });
  };
}
