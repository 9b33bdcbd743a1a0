/**
 * A throw-away PostgreSQL cluster for tests: initdb into a temp folder, postgres listening only on a
 * unix socket in that folder, stopped and deleted afterwards. Uses Debian's binaries
 * (/usr/lib/postgresql/<version>/bin, or LLAMAREC_PG_BIN). PostgreSQL refuses to run as root, so as root
 * the cluster runs as the `postgres` system user (runuser).
 *
 * `startPgCluster` never throws: it returns `{ url }` or `{ reason }` so the suite can say plainly why
 * PostgreSQL is not tested; in CI (CI=true) the suite turns a reason into a failure instead of a skip.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PgCluster {
  url: string;
  stop(): void;
}

export type PgStart = { ok: true; cluster: PgCluster } | { ok: false; reason: string };

function binDir(): string | null {
  if (process.env.LLAMAREC_PG_BIN) return process.env.LLAMAREC_PG_BIN;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(root, versions[0]!, "bin") : null;
}

export function startPgCluster(): PgStart {
  const bin = binDir();
  if (!bin)
    return {
      ok: false,
      reason: "no PostgreSQL binaries (/usr/lib/postgresql/*/bin; apt-get install postgresql)",
    };
  const dir = mkdtempSync(join(tmpdir(), "llamarec-pg-"));
  const data = join(dir, "data");
  const isRoot = process.getuid?.() === 0;
  const asUser = (cmd: string, args: string[]): [string, string[]] =>
    isRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
  try {
    if (isRoot) {
      const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
      const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
      chownSync(dir, uid, gid);
      chmodSync(dir, 0o700);
    }
    const run = (cmd: string, args: string[]) => {
      const [c, a] = asUser(cmd, args);
      const r = spawnSync(c, a, { encoding: "utf8", timeout: 60_000 });
      if (r.status !== 0)
        throw new Error(
          `${cmd} ${args[0] ?? ""}: ${(r.stderr || r.stdout || String(r.error)).trim().slice(-400)}`,
        );
    };
    run(join(bin, "initdb"), ["-D", data, "-U", "llamarec", "--auth=trust", "-E", "UTF8", "--no-sync"]);
    const port = 20000 + Math.floor(Math.random() * 20000);
    run(join(bin, "pg_ctl"), [
      "-D",
      data,
      "-l",
      join(dir, "log"),
      "-w",
      "-t",
      "60",
      "-o",
      `-k ${dir} -c listen_addresses='' -p ${port}`,
      "start",
    ]);
    const url = `postgresql://llamarec@localhost/postgres?host=${encodeURIComponent(dir)}&port=${port}`;
    return {
      ok: true,
      cluster: {
        url,
        stop() {
          try {
            run(join(bin, "pg_ctl"), ["-D", data, "-m", "fast", "-w", "stop"]);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      },
    };
  } catch (err) {
    let log = "";
    try {
      log = readFileSync(join(dir, "log"), "utf8").trim().split("\n").slice(-3).join(" | ");
    } catch {}
    rmSync(dir, { recursive: true, force: true });
    return { ok: false, reason: `${(err as Error).message}${log ? ` (log: ${log})` : ""}` };
  }
}
