// npm run bench:db [-- --mb 400]   (root, Debian; a benchmark, not a test)
// MariaDB across sites in the lab, one run: generates a data set of the given size on the
// old primary, then measures
//   1. the program's seeding of the new replica (one snapshot streamed over the mesh and
//      TLS straight into the replica), from the step's own timing;
//   2. the classic way on the same data: dump to a file over the same path, then restore
//      it into a scratch server;
//   3. steady replication lag under a writer (Seconds_Behind_Master and GTID gap, sampled).
// Prints and writes bench-db.json.
import * as fs from "fs";
import * as path from "path";
import { LAB_DIR, Lab } from "../lab/lab";
import { LAB_STACKS, provision } from "../lab/runtime";

const PRIMARY = "old-db-1";
const REPLICA = "new-db-1";
const SCRATCH = "new-app-1";
const PRIMARY_MESH = "198.18.1.110";

function argMb(): number {
    const i = process.argv.indexOf("--mb");
    const mb = i >= 0 ? Number(process.argv[i + 1]) : 400;
    if (!Number.isFinite(mb) || mb < 10) throw new Error(`--mb: ${process.argv[i + 1]} is not a size in MB (at least 10)`);
    return mb;
}

async function must(lab: Lab, host: string, command: string, timeoutMs = 30 * 60_000): Promise<string> {
    const r = await lab.enter(host, command, timeoutMs);
    if (r.code !== 0) throw new Error(`${host}: ${command.slice(0, 80)}: ${r.stderr}`);
    return r.stdout.trim();
}

async function main() {
    const mb = argMb();
    const lab = new Lab();
    try {
        await lab.up();
        await provision(lab, LAB_STACKS.old);
        console.log(`generating ~${mb} MB on ${PRIMARY}`);
        // 1 KiB rows, doubled until the size is reached.
        const rows = Math.ceil((mb * 1024 * 1024) / 1100);
        await must(lab, PRIMARY, `mariadb -e "CREATE DATABASE bench; CREATE TABLE bench.bulk (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(1024)) ENGINE=InnoDB; INSERT INTO bench.bulk(payload) SELECT REPEAT(MD5(RAND()), 32) FROM seq_1_to_1000;"
            while [ "$(mariadb -N -e 'SELECT COUNT(*) FROM bench.bulk')" -lt ${rows} ]; do
                mariadb -e "INSERT INTO bench.bulk(payload) SELECT REPEAT(MD5(RAND()), 32) FROM bench.bulk LIMIT ${rows}"
            done`);
        const bytes = Number(await must(lab, PRIMARY, "mariadb -N -e \"SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema='bench'\""));
        const dataMb = bytes / 1024 / 1024;
        console.log(`data set: ${dataMb.toFixed(0)} MB in InnoDB`);

        await provision(lab, LAB_STACKS.new);
        await provision(lab, LAB_STACKS.old);
        const seeded = await provision(lab, LAB_STACKS.new);
        const state = JSON.parse(fs.readFileSync(path.join(LAB_DIR, "state-lab-new.json"), "utf8"));
        const stdout: string = state[`command:remote:Command::new-db-${REPLICA}`].stdout;
        const seedMs = Number(/seeded \[[^\]]*\] in (\d+) ms/.exec(stdout)?.[1]);
        if (!seedMs) throw new Error(`the replica step reported no seeding time: ${stdout}`);
        console.log(`seeding (streamed): ${(seedMs / 1000).toFixed(1)} s, ${(dataMb / (seedMs / 1000)).toFixed(1)} MB/s (step total ${(seeded.ms / 1000).toFixed(1)} s)`);

        // The classic way, same data, same path: dump to a file, then restore into a scratch server.
        const password = JSON.parse(fs.readFileSync(path.join(LAB_DIR, "resources-lab-old.json"), "utf8"))["random:index/randomPassword:RandomPassword::old-db-replication"].result.state.result.secret as string;
        const ca = await must(lab, REPLICA, "cat /etc/mysql/cutover/ca.pem");
        await must(lab, SCRATCH, `mkdir -p /tmp/bench && cat > /tmp/bench/ca.pem <<'EOF'\n${ca}\nEOF\nprintf '[client]\\nuser=repl\\npassword=%s\\n' '${password}' > /tmp/bench/opts && chmod 600 /tmp/bench/opts && /etc/init.d/mariadb start >/dev/null`);
        const dump = await must(lab, SCRATCH, `s=$(date +%s%N); mariadb-dump --defaults-extra-file=/tmp/bench/opts --ssl --ssl-ca=/tmp/bench/ca.pem --ssl-verify-server-cert -h ${PRIMARY_MESH} --single-transaction --databases bench > /tmp/bench/dump.sql; echo $(( ($(date +%s%N) - s) / 1000000 ))`);
        const restore = await must(lab, SCRATCH, `s=$(date +%s%N); mariadb < /tmp/bench/dump.sql; echo $(( ($(date +%s%N) - s) / 1000000 ))`);
        const classicMs = Number(dump) + Number(restore);
        console.log(`dump to file + restore: ${(Number(dump) / 1000).toFixed(1)} s + ${(Number(restore) / 1000).toFixed(1)} s = ${(classicMs / 1000).toFixed(1)} s, ${(dataMb / (classicMs / 1000)).toFixed(1)} MB/s`);

        // Steady lag under a writer for 15 s.
        await must(lab, PRIMARY, `mariadb -e "CREATE TABLE IF NOT EXISTS bench.writes (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(200))"; rm -f /tmp/stop; setsid nohup bash -c 'while [ ! -e /tmp/stop ]; do mariadb -e "INSERT INTO bench.writes(payload) VALUES (repeat(\\"x\\",100))"; done' </dev/null >/dev/null 2>&1 &`);
        const samples: number[] = [];
        const gaps: number[] = [];
        const end = Date.now() + 15_000;
        while (Date.now() < end) {
            const [behind, p, r] = await Promise.all([
                must(lab, REPLICA, "mariadb -e 'SHOW SLAVE STATUS\\G' | awk -F': ' '/Seconds_Behind_Master/ {print $2}'"),
                must(lab, PRIMARY, "mariadb -N -e 'SELECT @@gtid_binlog_pos'"),
                must(lab, REPLICA, "mariadb -N -e 'SELECT @@gtid_slave_pos'"),
            ]);
            samples.push(Number(behind));
            gaps.push(Number(p.split("-").pop()) - Number(r.split("-").pop()));
            await new Promise((res) => setTimeout(res, 500));
        }
        const writes = Number(await must(lab, PRIMARY, "touch /tmp/stop; sleep 0.5; mariadb -N -e 'SELECT COUNT(*) FROM bench.writes'"));
        const result = {
            at: new Date().toISOString(),
            dataMb: Math.round(dataMb),
            seed: { seconds: seedMs / 1000, mbPerSecond: Math.round((dataMb / (seedMs / 1000)) * 10) / 10 },
            dumpThenRestore: { dumpSeconds: Number(dump) / 1000, restoreSeconds: Number(restore) / 1000, mbPerSecond: Math.round((dataMb / (classicMs / 1000)) * 10) / 10 },
            ratio: Math.round((classicMs / seedMs) * 100) / 100,
            lag: { writesPerSecond: Math.round(writes / 15), samples: samples.length, maxSecondsBehind: Math.max(...samples), maxGtidGap: Math.max(...gaps), meanGtidGap: Math.round((gaps.reduce((a, b) => a + b, 0) / gaps.length) * 10) / 10 },
        };
        console.log(`steady lag under ~${result.lag.writesPerSecond} writes/s: Seconds_Behind_Master max ${result.lag.maxSecondsBehind}, GTID gap max ${result.lag.maxGtidGap} (mean ${result.lag.meanGtidGap}) transactions`);
        console.log(`streamed seeding is ${result.ratio}x the speed of dump-then-restore`);
        fs.writeFileSync("bench-db.json", `${JSON.stringify(result, null, 2)}\n`);
    } finally {
        await Lab.down();
    }
}

main().catch(async (e) => {
    console.error(e?.message ?? e);
    await Lab.down();
    process.exit(1);
});
