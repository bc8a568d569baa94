// The edge flip under load, shared by the lab test and the rehearsal: the load generator
// writes through an edge from the client namespace while the edges are held, switched
// and released; afterwards every write is checked against the rows in the live database.
import * as path from "path";
import { PROBE_TABLE } from "../components/database/mysql";
import { PG_PROBE_DB } from "../components/database/postgres";
import { EDGE_SOCKET } from "../components/edge/render";
import { LAB_DIR, Lab } from "./lab";
import { StepRun, readRuns } from "./executor";
import { LAB_STACKS, provision } from "./runtime";
import { unwrapSecrets } from "../tools/offline/secrets";
import { LAB_PREFIX } from "./topology";

const LOADGEN = path.resolve(__dirname, "loadgen.py");

export interface Write {
    seq: number;
    /** ms since the epoch when sent. */
    sent: number;
    /** Latency in ms. */
    ms: number;
    /** HTTP status; 0 when no answer came. */
    status: number;
    /** The app's "<site> <host>". */
    served: string;
}

/** Runs a command on an edge's admin socket; returns its answer. */
export async function edgeAdmin(lab: Lab, edge: string, command: string): Promise<string> {
    const r = await lab.enter(edge, `echo "${command}" | socat -t 2 - UNIX-CONNECT:${EDGE_SOCKET}`);
    if (r.code !== 0) throw new Error(`${edge}: "${command}" failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
}

/**
 * Writes at `rate`/s for `seconds` through `url` while `during` runs; returns every write.
 * With `tailMs` the load stops that long after `during` ended (`seconds` is then the most).
 */
export async function underLoad(lab: Lab, o: { url: string; client: string; rate: number; seconds: number; tailMs?: number }, during: () => Promise<void>): Promise<Write[]> {
    // The client's namespace shares the machine's /tmp: named per lab, as the other lane's lab writes there too.
    const out = `/tmp/${LAB_PREFIX}-loadgen-${o.client}.jsonl`;
    const stop = `/tmp/${LAB_PREFIX}-loadgen-${o.client}.stop`;
    await lab.client(`rm -f ${stop}`);
    const run = lab.client(`python3 ${LOADGEN} --url ${o.url} --rate ${o.rate} --seconds ${o.seconds} --client ${o.client} --out ${out}${o.tailMs !== undefined ? ` --stop-file ${stop}` : ""}`, (o.seconds + 60) * 1000);
    try {
        await during();
        if (o.tailMs !== undefined) {
            await new Promise((r) => setTimeout(r, o.tailMs));
            await lab.client(`touch ${stop}`);
        }
    } finally {
        const r = await run;
        if (r.code !== 0) throw new Error(`the load generator failed: ${r.stderr.trim()}`);
    }
    const text = (await lab.client(`cat ${out}`)).stdout;
    return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Write);
}

/** How often each sequence number of a client is in the probe table of the database on `dbHost`. */
export async function recordedWrites(lab: Lab, dbHost: string, client: string, engine: "mariadb" | "postgres" = "mariadb"): Promise<Map<number, number>> {
    const query = `SELECT seq, COUNT(*) FROM ${engine === "postgres" ? "writes" : PROBE_TABLE} WHERE client = '${client}' GROUP BY seq`;
    const r = await lab.enter(dbHost, engine === "postgres"
        ? `runuser -u postgres -- psql -X -q -At -F '	' -d ${PG_PROBE_DB} -c "${query}"`
        : `mariadb --batch --skip-column-names -e "${query}"`);
    if (r.code !== 0) throw new Error(`${dbHost}: reading ${PROBE_TABLE} failed: ${r.stderr.trim()}`);
    const counts = new Map<number, number>();
    for (const line of r.stdout.split("\n").filter(Boolean)) {
        const [seq, n] = line.split("\t").map(Number);
        counts.set(seq, n);
    }
    return counts;
}

const percentile = (xs: number[], p: number) => (xs.length === 0 ? 0 : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]);

export interface FlipFigures {
    writes: number;
    /** Answered with an error or not at all. */
    failed: number;
    /** Acknowledged (200) but recorded nowhere. */
    lost: number;
    /** Recorded more than once. */
    duplicated: number;
    /** From the first failed write sent to the first later write that succeeded (0: none failed). */
    unavailableMs: number;
    /** Latency of the writes sent inside the window [from, to] (ms since the epoch). */
    window: { writes: number; p50Ms: number; p99Ms: number; maxMs: number };
    /** Where the writes sent after the window were served. */
    servedAfter: string[];
}

export function flipFigures(writes: Write[], recorded: Map<number, number>, from: number, to: number): FlipFigures {
    const failed = writes.filter((w) => w.status !== 200);
    const firstFailed = failed.length > 0 ? Math.min(...failed.map((w) => w.sent)) : undefined;
    const recovered = firstFailed === undefined ? undefined : writes.filter((w) => w.status === 200 && w.sent > firstFailed).map((w) => w.sent + w.ms).sort((a, b) => a - b)[0];
    const inside = writes.filter((w) => w.sent >= from && w.sent <= to).map((w) => w.ms);
    return {
        writes: writes.length,
        failed: failed.length,
        lost: writes.filter((w) => w.status === 200 && !recorded.has(w.seq)).length,
        duplicated: [...recorded.values()].filter((n) => n > 1).length,
        unavailableMs: firstFailed === undefined ? 0 : Math.round((recovered ?? firstFailed) - firstFailed),
        window: { writes: inside.length, p50Ms: Math.round(percentile(inside, 50)), p99Ms: Math.round(percentile(inside, 99)), maxMs: Math.round(Math.max(0, ...inside)) },
        servedAfter: [...new Set(writes.filter((w) => w.sent > to && w.status === 200).map((w) => w.served))],
    };
}

/**
 * Where the writes sent while every edge held them (the audit's t0 held .. t5 routed) were
 * served: the incoming site when the switch released them, the outgoing one when an edge's own
 * deadline did. Empty without those marks (dual-primary holds nothing).
 */
export function heldServedBy(writes: Write[], audit: Record<string, unknown> | undefined): string[] {
    const held = Number(audit?.held);
    const routed = Number(audit?.routed);
    if (!(held > 0 && routed > 0)) return [];
    return [...new Set(writes.filter((w) => w.sent >= held && w.sent < routed && w.status === 200).map((w) => w.served))];
}

export interface FlipRun {
    writes: Write[];
    /** The runbook's steps that ran (not the unchanged ones), in order. */
    steps: StepRun[];
    /** Set when the program failed (an aborted cutover). */
    error?: string;
    /** The audit record of the runbook (the `runbook` stack output), when the run succeeded. */
    audit?: Record<string, unknown>;
    /** The switch step (the write-holding window): when it started and ended (ms since the epoch). */
    from: number;
    to: number;
}

/**
 * Flips the lab's new stack (which owns cutover:live; `stack`, default lab-new) with `config` while the load
 * generator writes through `url`: the program runs the runbook exactly as `pulumi up`.
 */
export async function flipUnderLoad(lab: Lab, o: { url: string; client: string; rate: number; seconds: number; leadMs: number; tailMs?: number; config: Record<string, string>; stack?: string }): Promise<FlipRun> {
    const before = readRuns(LAB_DIR).length;
    let error: string | undefined;
    let audit: Record<string, unknown> | undefined;
    const writes = await underLoad(lab, o, async () => {
        await new Promise((r) => setTimeout(r, o.leadMs));
        try {
            const p = await provision(lab, o.stack ?? LAB_STACKS.new, { config: o.config });
            const text = (unwrapSecrets(p.evaluation.outputs) as { runbook?: { audit?: string } }).runbook?.audit;
            audit = text ? JSON.parse(text) : undefined;
        } catch (e) {
            error = (e as Error).message;
        }
    });
    const runs = readRuns(LAB_DIR).slice(before);
    const steps = runs.filter((r) => r.step.includes("-runbook-") && r.action !== "unchanged");
    // Writes are held from the first of freeze (PostgreSQL) or switch to the end of the switch.
    const window = steps.find((r) => r.step.endsWith("-switch")) ?? steps[steps.length - 1];
    const first = steps.find((r) => r.step.endsWith("-freeze")) ?? window;
    return { writes, steps, error, audit, from: first ? (first.endedAt ?? 0) - first.ms : 0, to: window?.endedAt ?? 0 };
}

/** The environment for redis-cli on a lab host: the host's own Redis password, from the file the program wrote. */
export const REDIS_AUTH = `REDISCLI_AUTH=$(awk '$1 == "requirepass" { gsub(/"/, "", $2); print $2 }' /etc/redis/cutover-auth.conf)`;

export async function redisCli(lab: Lab, host: string, args: string): Promise<string> {
    const r = await lab.enter(host, `${REDIS_AUTH} redis-cli --no-auth-warning ${args}`);
    if (r.code !== 0) throw new Error(`${host}: redis-cli ${args}: ${r.stderr.trim()}`);
    return r.stdout.trim();
}

/**
 * A job worker's writes, as a pooled client sends them: one connection kept open (opened again
 * after it fails), RPUSH <key> 1, 2, ... one every 20 ms (the time a write took counts toward
 * it), each number logged as acknowledged (an integer reply within 10 s) or failed. One process
 * over one socket, so the rate does not depend on how fast the host forks (with a redis-cli per
 * write, CI's slower machine acknowledged 94 writes before the pause where the tests want 100).
 * The password is read from the file the program wrote, never from a command line.
 */
const REDIS_WRITER = `import os, socket, sys, time
key, out = sys.argv[1], sys.argv[2]
password = next(l.split()[1].strip('"') for l in open("/etc/redis/cutover-auth.conf") if l.split()[:1] == ["requirepass"])
def command(*args):
    return b"*%d\\r\\n" % len(args) + b"".join(b"$%d\\r\\n%s\\r\\n" % (len(a), a) for a in (x.encode() for x in args))
def connect():
    s = socket.create_connection(("127.0.0.1", 6379), timeout=10)
    f = s.makefile("rb")
    s.sendall(command("AUTH", password))
    if not f.readline().startswith(b"+OK"):
        raise OSError("AUTH refused")
    return s, f
conn = None
acked, failed = open(out + "/acked", "a", buffering=1), open(out + "/failed", "a", buffering=1)
i = 0
while not os.path.exists(out + "/stop"):
    i += 1
    started = time.monotonic()
    try:
        if conn is None:
            conn = connect()
        conn[0].sendall(command("RPUSH", key, str(i)))
        ok = conn[1].readline().startswith(b":")
    except OSError:
        if conn is not None:
            conn[0].close()
        ok, conn = False, None
    print(i, file=acked if ok else failed)
    time.sleep(max(0.0, 0.02 - (time.monotonic() - started)))
open(out + "/stopped", "w").close()
`;

/** Starts the job worker's writes (REDIS_WRITER) on `host` against its own Redis; fails unless its first write is acknowledged within 5 s. */
export async function startRedisWriter(lab: Lab, host: string, key: string): Promise<void> {
    const dir = `/tmp/redis-writer-${key}`;
    const r = await lab.enter(host, `rm -rf ${dir} && mkdir -p ${dir}
cat > ${dir}/writer.py <<'WRITER'
${REDIS_WRITER}WRITER
setsid nohup python3 ${dir}/writer.py ${key} ${dir} </dev/null >${dir}/log 2>&1 &
for _ in $(seq 1 50); do [ -s ${dir}/acked ] && exit 0; sleep 0.1; done
cat ${dir}/log >&2; exit 1`);
    if (r.code !== 0) throw new Error(`${host}: the Redis writer did not start: ${r.stderr.trim()}`);
}

export interface RedisWriterFigures {
    /** Numbers the writer sent. */
    writes: number;
    failed: number;
    /** Acknowledged, but not in the list on the live Redis. */
    lost: number;
}

/** Stops the writer on `host`; counts its acknowledged writes missing from the list on `liveHost`. */
export async function stopRedisWriter(lab: Lab, host: string, key: string, liveHost: string): Promise<RedisWriterFigures> {
    const dir = `/tmp/redis-writer-${key}`;
    const stop = await lab.enter(host, `touch ${dir}/stop; for _ in $(seq 1 120); do [ -e ${dir}/stopped ] && exit 0; sleep 0.1; done; cat ${dir}/log >&2; exit 1`);
    if (stop.code !== 0) throw new Error(`${host}: the Redis writer did not stop within 12 s (it died or hangs): ${stop.stderr.trim()}`);
    const lines = async (file: string) => (await lab.enter(host, `cat ${dir}/${file} 2>/dev/null || true`)).stdout.split("\n").filter(Boolean);
    const acked = await lines("acked");
    const failed = await lines("failed");
    const present = new Set((await redisCli(lab, liveHost, `LRANGE ${key} 0 -1`)).split("\n"));
    return { writes: acked.length + failed.length, failed: failed.length, lost: acked.filter((i) => !present.has(i)).length };
}
