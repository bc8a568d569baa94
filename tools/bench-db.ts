// npm run bench:db -- [--size-mb N] [--engine mariadb|postgres|redis ...]  (root, Debian; a benchmark, not a test)
// Per engine, in one lab run: provisions the old site through the program, generates a data
// set of the given size on its primary with set-based statements, then
//   1. seeds the new site's replica through the program (streamed over the mesh, TLS) while
//      a writer keeps writing to the primary, and reports MB/s;
//   2. copies the same data the plain way on the primary host: dump to a file, restore
//      into a scratch database (no network at all, so the comparison favours it), MB/s;
//   3. measures replication lag under the writer: markers written on the primary, the
//      time until each is visible on the replica (both hosts share the kernel clock).
// Prints and writes bench-db.json.
import * as fs from "fs";
import { Lab, LAB_DIR } from "../lab/lab";
import { LAB_STACKS, WITHOUT_FLIP, provision } from "../lab/runtime";

type Engine = "mariadb" | "postgres" | "redis";
const PRIMARY = "old-db-1";
const REPLICA = "new-db-1";
const PSQL = "runuser -u postgres -- psql -X -q -At";
const REDIS = `REDISCLI_AUTH=$(awk '$1 == "requirepass" { gsub(/"/, "", $2); print $2 }' /etc/redis/cutover-auth.conf) redis-cli --no-auth-warning`;
/** Rows of about 1 KB (31 MD5 hex strings); a data set of N MB has N MB of these. */
const ROW_BYTES = 992;

interface EngineBench {
    config: (phase: string) => Record<string, string | null>;
    /** The replica's step on the new site. */
    step: string;
    /** Shell that creates about `mb` MB of data on the primary. */
    generate: (mb: number) => string;
    /** Shell printing the logical data size in MB on a host. */
    size: string;
    /** Shell: dump to a file and restore into a scratch copy, on one host. */
    dumpRestore: string;
    /** Shell: one steady write (the background writer's statement). */
    write: string;
    /** Shell: write marker $k. */
    marker: string;
    /** Shell printing the newest marker visible. */
    latestMarker: string;
}

const BENCH: Record<Engine, EngineBench> = {
    mariadb: {
        config: (phase) => ({ "cutover:database": JSON.stringify({ engine: "mariadb", phase }) }),
        step: "new-db-new-db-1",
        generate: (mb) => {
            const rows = Math.ceil((mb * 1024 * 1024) / ROW_BYTES);
            const chunk = 100_000;
            const parts = Array.from({ length: Math.ceil(rows / chunk) }, (_, i) => `INSERT INTO bench.t (payload) SELECT REPEAT(MD5(seq + ${i * chunk}), 31) FROM seq_1_to_${Math.min(chunk, rows - i * chunk)};`);
            return `mariadb -e "CREATE DATABASE bench; CREATE TABLE bench.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(1000)) ENGINE=InnoDB; CREATE TABLE bench.lag (seq BIGINT PRIMARY KEY); CREATE TABLE bench.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100));"
mariadb bench -e "${parts.join(" ")}"`;
        },
        size: `mariadb -N -e "ANALYZE TABLE bench.t" >/dev/null; mariadb -N -e "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = 'bench'"`,
        dumpRestore: `mariadb-dump --single-transaction bench > /var/tmp/bench.sql && mariadb -e "CREATE DATABASE bench_restore" && { echo "SET SESSION sql_log_bin=0;"; cat /var/tmp/bench.sql; } | mariadb bench_restore; rc=$?; rm -f /var/tmp/bench.sql; mariadb -e "SET SESSION sql_log_bin=0; DROP DATABASE bench_restore"; exit $rc`,
        write: `mariadb -e "INSERT INTO bench.w (v) VALUES (REPEAT('x', 100))"`,
        marker: `mariadb -e "INSERT INTO bench.lag VALUES ($k)"`,
        latestMarker: `mariadb -N -e "SELECT COALESCE(MAX(seq), 0) FROM bench.lag"`,
    },
    postgres: {
        config: (phase) => ({ ...WITHOUT_FLIP, "cutover:database": JSON.stringify({ engine: "postgres", phase }) }),
        step: "new-db-new-db-1",
        generate: (mb) => {
            const rows = Math.ceil((mb * 1024 * 1024) / ROW_BYTES);
            return `${PSQL} -c "CREATE TABLE t (id BIGINT PRIMARY KEY, payload TEXT); CREATE TABLE lag (seq BIGINT PRIMARY KEY); CREATE TABLE w (id BIGSERIAL PRIMARY KEY, v TEXT)"
${PSQL} -c "ALTER TABLE t ALTER payload SET STORAGE PLAIN" -c "INSERT INTO t SELECT g, repeat(md5(g::text), 31) FROM generate_series(1, ${rows}) g"`;
        },
        size: `${PSQL} -c "SELECT round(pg_total_relation_size('t') / 1048576.0)"`,
        dumpRestore: `runuser -u postgres -- pg_dump -t t -f /var/tmp/bench.sql postgres && runuser -u postgres -- createdb bench_restore && ${PSQL} -d bench_restore -f /var/tmp/bench.sql >/dev/null; rc=$?; rm -f /var/tmp/bench.sql; runuser -u postgres -- dropdb bench_restore; exit $rc`,
        write: `${PSQL} -c "INSERT INTO w (v) VALUES (repeat('x', 100))"`,
        marker: `${PSQL} -c "INSERT INTO lag VALUES ($k)"`,
        latestMarker: `${PSQL} -c "SELECT COALESCE(MAX(seq), 0) FROM lag"`,
    },
    redis: {
        config: (phase) => ({ "cutover:cache": JSON.stringify({ engine: "redis", phase }) }),
        step: "new-cache-new-db-1",
        // Mass insertion with the Redis protocol (redis-cli --pipe): one client, no round trips.
        generate: (mb) => {
            const keys = Math.ceil((mb * 1024 * 1024) / ROW_BYTES);
            return `awk -v n=${keys} 'BEGIN { for (i = 1; i <= n; i++) { k = "key:" i; v = sprintf("%0${ROW_BYTES}d", i); printf "*3\\r\\n$3\\r\\nSET\\r\\n$%d\\r\\n%s\\r\\n$%d\\r\\n%s\\r\\n", length(k), k, length(v), v } }' | ${REDIS} --pipe >/dev/null`;
        },
        size: `${REDIS} INFO memory | tr -d '\\r' | awk -F: '$1 == "used_memory_dataset" { printf "%d\\n", $2 / 1048576 }'`,
        // The plain way: fetch an RDB snapshot into a file, load it into a scratch server.
        dumpRestore: `${REDIS} --rdb /var/tmp/bench.rdb >/dev/null && mkdir -p /var/tmp/restore && mv /var/tmp/bench.rdb /var/tmp/restore/dump.rdb && redis-server --port 6399 --bind 127.0.0.1 --dir /var/tmp/restore --daemonize yes --save "" >/dev/null && until [ "$(redis-cli -p 6399 PING 2>/dev/null)" = PONG ]; do sleep 0.05; done; redis-cli -p 6399 DBSIZE >/dev/null; redis-cli -p 6399 SHUTDOWN NOSAVE >/dev/null 2>&1; rm -rf /var/tmp/restore`,
        write: `${REDIS} RPUSH w xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx >/dev/null`,
        marker: `${REDIS} SET lag $k >/dev/null`,
        latestMarker: `v=$(${REDIS} GET lag); echo "\${v:-0}"`,
    },
};

function writerScript(b: EngineBench): string {
    return `rm -f /tmp/bench-stop
cat > /tmp/bench-writer.sh <<'WRITER'
n=0
while [ ! -e /tmp/bench-stop ]; do ${b.write} && n=$((n+1)); done
echo $n > /tmp/bench-writes
WRITER
setsid nohup bash /tmp/bench-writer.sh </dev/null >/dev/null 2>&1 &`;
}

async function must(lab: Lab, host: string, script: string, what: string): Promise<{ ms: number; stdout: string }> {
    const r = await lab.enter(host, script, 60 * 60_000);
    if (r.code !== 0) throw new Error(`${what} on ${host} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    return { ms: r.ms, stdout: r.stdout.trim() };
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

async function lag(lab: Lab, b: EngineBench, samples: number): Promise<{ p50Ms: number; maxMs: number; samples: number; pollMs: number }> {
    // The poller prints "<marker> <ns>" when a newer marker becomes visible on the replica.
    await must(lab, REPLICA, `cat > /tmp/bench-poll.sh <<'POLL'
last=0; polls=0; start=$(date +%s%N)
while [ ! -e /tmp/bench-poll-stop ]; do
    v=$(${b.latestMarker}); polls=$((polls+1))
    if [ "$v" != "$last" ]; then echo "$v $(date +%s%N)" >> /tmp/bench-seen; last=$v; fi
done
echo "$polls $(( ($(date +%s%N) - start) / 1000000 ))" > /tmp/bench-polls
POLL
rm -f /tmp/bench-seen /tmp/bench-poll-stop; setsid nohup bash /tmp/bench-poll.sh </dev/null >/dev/null 2>&1 &`, "lag poller");
    const acked = await must(lab, PRIMARY, `for k in $(seq 1 ${samples}); do ${b.marker}; echo "$k $(date +%s%N)"; sleep 0.3; done`, "lag markers");
    await new Promise((r) => setTimeout(r, 2000));
    await must(lab, REPLICA, "touch /tmp/bench-poll-stop; sleep 0.5", "stop poller");
    const seen = new Map((await must(lab, REPLICA, "cat /tmp/bench-seen", "read poller")).stdout.split("\n").map((l) => l.split(" ").map(Number) as [number, number]));
    const [polls, pollSpanMs] = (await must(lab, REPLICA, "cat /tmp/bench-polls", "poll count")).stdout.split(" ").map(Number);
    const lags = acked.stdout.split("\n").map((l) => l.split(" ").map(Number)).filter(([k]) => seen.has(k)).map(([k, t]) => Math.max(0, (seen.get(k)! - t) / 1e6));
    if (lags.length < samples / 2) throw new Error(`only ${lags.length} of ${samples} markers became visible on the replica`);
    return { p50Ms: Math.round(percentile(lags, 50)), maxMs: Math.round(Math.max(...lags)), samples: lags.length, pollMs: Math.round(pollSpanMs / polls) };
}

async function benchEngine(engine: Engine, sizeMb: number) {
    const b = BENCH[engine];
    const lab = new Lab();
    try {
        await lab.up();
        await provision(lab, LAB_STACKS.old, { config: b.config("primary") });
        console.log(`${engine}: generating ${sizeMb} MB on ${PRIMARY}`);
        const gen = await must(lab, PRIMARY, b.generate(sizeMb), "generate data");
        // MB/s are of the payload (the same bytes for every engine); the engine's own size is reported beside it.
        const dataMb = sizeMb;
        const engineMb = Number((await must(lab, PRIMARY, b.size, "data size")).stdout);
        console.log(`${engine}: ${dataMb} MB of payload (${engineMb} MB as the engine stores it) generated in ${(gen.ms / 1000).toFixed(1)} s`);

        await must(lab, PRIMARY, writerScript(b), "start writer");
        await provision(lab, LAB_STACKS.new, { config: b.config("replica") }); // waits for the peer
        await provision(lab, LAB_STACKS.old, { config: b.config("primary") });
        const seeded = await provision(lab, LAB_STACKS.new, { config: b.config("replica") });
        if (!seeded.runs.some((r) => r.step === b.step && r.action !== "unchanged")) throw new Error(`the replica step ${b.step} did not run`);
        // The step times its own seed (MariaDB, PostgreSQL) or full sync (Redis).
        const state = JSON.parse(fs.readFileSync(`${LAB_DIR}/state-${LAB_STACKS.new}.json`, "utf8"));
        const stdout: string = state[`command:remote:Command::${b.step}`]?.stdout ?? "";
        const reported = /(?:seeded|synced) [^\n]*? in (\d+) ms/.exec(stdout)?.[1];
        if (!reported) throw new Error(`${b.step} reported no seeding time: ${stdout}`);
        const seedMs = Number(reported);
        console.log(`${engine}: replica seeded in ${(seedMs / 1000).toFixed(1)} s`);

        const steadyLag = await lag(lab, b, 20);
        await must(lab, PRIMARY, "touch /tmp/bench-stop; sleep 1", "stop writer");
        const writes = Number((await must(lab, PRIMARY, "cat /tmp/bench-writes 2>/dev/null || echo 0", "writer count")).stdout);

        console.log(`${engine}: dump to a file and restore, on ${PRIMARY}`);
        const plain = await must(lab, PRIMARY, b.dumpRestore, "dump and restore");
        const seedMBps = dataMb / (seedMs / 1000);
        const dumpRestoreMBps = dataMb / (plain.ms / 1000);
        return {
            engine,
            dataMb,
            engineMb,
            generateSeconds: +(gen.ms / 1000).toFixed(1),
            seed: { seconds: +(seedMs / 1000).toFixed(1), mbPerSecond: +seedMBps.toFixed(1), how: engine === "mariadb" ? "mariadb-dump | mariadb over the mesh, TLS" : engine === "postgres" ? "pg_basebackup over the mesh, TLS + client certificate" : "Redis full sync through stunnel over the mesh" },
            dumpRestore: { seconds: +(plain.ms / 1000).toFixed(1), mbPerSecond: +dumpRestoreMBps.toFixed(1), how: "dump to a file and restore into a scratch copy on the primary host (no network)" },
            ratio: +(seedMBps / dumpRestoreMBps).toFixed(2),
            steadyLag,
            writerWritesDuringRun: writes,
        };
    } finally {
        await Lab.down();
    }
}

async function main() {
    const argv = process.argv.slice(2);
    const usage = (why: string): never => {
        console.error(`${why}\nusage: npm run bench:db -- [--size-mb 1..16384] [--engine mariadb|postgres|redis ...]`);
        process.exit(2);
    };
    let sizeMb = 1024;
    const engines: Engine[] = [];
    for (let i = 0; i < argv.length; i++) {
        const value = argv[i + 1] ?? "";
        if (argv[i] === "--size-mb") {
            sizeMb = Number(value);
            if (!Number.isInteger(sizeMb) || sizeMb < 1 || sizeMb > 16384) usage(`--size-mb: ${JSON.stringify(value)} is not a whole number of MB from 1 to 16384`);
        } else if (argv[i] === "--engine") {
            if (!(value in BENCH)) usage(`--engine: ${JSON.stringify(value)} is not one of ${Object.keys(BENCH).join(", ")}`);
            engines.push(value as Engine);
        } else usage(`unknown argument ${JSON.stringify(argv[i])}`);
        i++;
    }
    const results = [];
    for (const e of engines.length > 0 ? engines : (Object.keys(BENCH) as Engine[])) {
        const r = await benchEngine(e, sizeMb);
        console.log(`${e}: seed ${r.seed.mbPerSecond} MB/s vs dump+restore ${r.dumpRestore.mbPerSecond} MB/s (ratio ${r.ratio}); lag p50 ${r.steadyLag.p50Ms} ms, max ${r.steadyLag.maxMs} ms (poll ${r.steadyLag.pollMs} ms)`);
        results.push(r);
    }
    const report = { when: new Date().toISOString(), machine: `${require("os").cpus().length} cores`, sizeMb, results };
    fs.writeFileSync("bench-db.json", JSON.stringify(report, null, 2) + "\n");
    console.log("wrote bench-db.json");
}

main().catch(async (e) => {
    console.error(e?.message ?? e);
    await Lab.down().catch(() => undefined);
    process.exit(1);
});
