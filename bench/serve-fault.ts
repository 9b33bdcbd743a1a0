/**
 * The serving fault scenario, scripted and repeatable (used by test/server/fault.test.ts and
 * `npm run bench -- serve`): start `llamarec serve` as a child process, post events from several writers
 * (each waits for its acknowledgement before the next), kill -9 the server once `killAfter` events were
 * acknowledged while writers are still posting, restart it on the same store, then check that every
 * acknowledged event is in the store in order (at most the one unacknowledged in-flight event per writer
 * may follow), that users' states are rebuilt (recommendations answer from their events), that the server
 * is ready, and that SIGTERM stops it cleanly (exit 0).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

const REPO = join(import.meta.dirname, "..");

export interface ServeChild {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

/** Starts `llamarec serve` (from source, through tsx) on a free port and waits for its "listening" line. */
export function startServe(args: readonly string[], timeoutMs = 180_000): Promise<ServeChild> {
  return startListening([join(REPO, "src/cli/main.ts"), "serve", "--port", "0", ...args], timeoutMs);
}

/** Runs a TypeScript entry point (through tsx) that prints "listening on <url>", and waits for that line. */
export async function startListening(args: readonly string[], timeoutMs = 180_000): Promise<ServeChild> {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
    env: { LLAMAREC_THREADS: "1", ...process.env },
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.join(" ")} did not start in ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited with ${code} before listening: ${err}`));
    });
  });
  return { child, url, stderr: () => err, exited, stdout: () => out };
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of several endpoints, checked by the callers
export async function postJson(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export interface FaultOptions {
  runDir: string;
  store: string;
  /** Raw item ids to post (cycled). */
  items: readonly string[];
  writers?: number;
  killAfter?: number;
  /** Prefix of the writers' user ids (unique per scenario run). */
  userPrefix?: string;
}

export interface FaultResult {
  acknowledged: number;
  /** Acknowledged events found at their position after the restart. */
  found: number;
  /** Committed but unacknowledged (in flight at the kill). */
  unacknowledged: number;
  problems: string[];
  /** Kill -9 → /readyz 200 on the restarted server (includes process start and model load). */
  restartMs: number;
  users: string[];
  /** Items the restarted server knows for each writer (acknowledged + in-flight), oldest first. */
  storedItems: Map<string, string[]>;
  /** Recommendations of the restarted server per writer. */
  recommended: Map<string, { items: { item_id: string; score: number }[]; note?: string }>;
  sigtermExit: number | null;
}

export async function faultScenario(o: FaultOptions): Promise<FaultResult> {
  const writers = o.writers ?? 4;
  const killAfter = o.killAfter ?? 200;
  const prefix = o.userPrefix ?? `fault-${Date.now()}`;
  const args = ["--run", o.runDir, "--store", o.store, "--ranker", "none", "-q"];
  const first = await startServe(args);
  const users = Array.from({ length: writers }, (_, w) => `${prefix}-w${w}`);
  const acked = new Map<string, string[]>(users.map((u) => [u, []]));
  let total = 0;
  let killed = false;
  let killedAt = 0;
  const writer = async (user: string, w: number) => {
    for (let i = 0; !killed; i++) {
      const item = o.items[(i * 7 + w) % o.items.length]!;
      try {
        const r = await postJson(`${first.url}/v1/events`, { user_id: user, item_id: item });
        if (r.status !== 200) throw new Error(`status ${r.status}`);
        acked.get(user)!.push(item);
        total++;
        if (total >= killAfter && !killed) {
          killed = true;
          killedAt = performance.now();
          first.child.kill("SIGKILL");
        }
      } catch {
        if (!killed) throw new Error(`event post failed before the kill: ${first.stderr()}`);
        return;
      }
    }
  };
  await Promise.all(users.map((u, w) => writer(u, w)));
  await first.exited;

  const second = await startServe(args);
  let restartMs = 0;
  for (;;) {
    const r = await fetch(`${second.url}/readyz`).catch(() => null);
    if (r?.status === 200) {
      restartMs = performance.now() - killedAt;
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const problems: string[] = [];
  let found = 0;
  let unacknowledged = 0;
  const storedItems = new Map<string, string[]>();
  const recommended: FaultResult["recommended"] = new Map();
  for (const user of users) {
    const h = (await (await fetch(`${second.url}/v1/users/${user}/history`)).json()) as { events: unknown };
    const events = h.events as { position: number; item_id: string }[];
    const mine = acked.get(user)!;
    mine.forEach((item, i) => {
      const e = events[i];
      if (e && e.position === i + 1 && e.item_id === item) found++;
      else problems.push(`${user}: acknowledged event ${i + 1} (${item}) missing or out of place`);
    });
    const extra = events.length - mine.length;
    if (extra < 0 || extra > 1)
      problems.push(`${user}: ${events.length} stored events for ${mine.length} acknowledged`);
    unacknowledged += Math.max(0, extra);
    storedItems.set(
      user,
      events.map((e) => e.item_id),
    );
    const rec = await postJson(`${second.url}/v1/recommend`, { user_id: user, k: 10 });
    if (rec.status !== 200) problems.push(`${user}: recommend answered ${rec.status}`);
    recommended.set(user, rec.body);
  }
  const ready = await fetch(`${second.url}/readyz`);
  if (ready.status !== 200) problems.push(`not ready after restart: ${ready.status}`);
  second.child.kill("SIGTERM");
  const sigtermExit = await second.exited;
  if (sigtermExit !== 0) problems.push(`SIGTERM exit code ${sigtermExit}: ${second.stderr()}`);
  return {
    acknowledged: total,
    found,
    unacknowledged,
    problems,
    restartMs,
    users,
    storedItems,
    recommended,
    sigtermExit,
  };
}
