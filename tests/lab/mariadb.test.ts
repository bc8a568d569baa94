// MariaDB replication from the old site to the new one on real mariadbd in lab hosts,
// over the tinc mesh and TLS, provisioned by the program, with a writer on the old
// primary the whole time.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { Lab, LAB_DIR } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { cutWhileWriting, lostOnReplica, stopWriter } from "./replication";
import { UNFREEZE_EVENT, freezeSql } from "../../components/runbook/render";

const skip = labSkip(["mariadbd", "tincd"]);

const PRIMARY = "old-db-1";
const REPLICA = "new-db-1";
const PRIMARY_MESH = "198.18.1.110";
/** The FIFO (.in) and output (.out) of a long-lived mariadb session on the primary. */
const POOLED = "/tmp/pooled-session";

/** Writes one row per statement through the local socket; each acknowledged seq is logged. */
const WRITER = `mariadb -e "CREATE DATABASE IF NOT EXISTS app; CREATE TABLE IF NOT EXISTS app.writes (id BIGINT AUTO_INCREMENT PRIMARY KEY, seq BIGINT NOT NULL UNIQUE, payload VARCHAR(200))"
rm -f /tmp/writer-stop /tmp/writer-acked /tmp/writer-failed
setsid nohup bash -c 'i=$(mariadb -N -e "SELECT COALESCE(MAX(seq),0) FROM app.writes"); while [ ! -e /tmp/writer-stop ]; do i=$((i+1)); if mariadb -e "INSERT INTO app.writes(seq,payload) VALUES($i, repeat(\\"x\\",100))" 2>/dev/null; then echo $i >> /tmp/writer-acked; else echo $i >> /tmp/writer-failed; fi; done' </dev/null >/dev/null 2>&1 &
sleep 1`;

async function sql(lab: Lab, host: string, query: string): Promise<string> {
    const r = await lab.enter(host, `mariadb --batch --skip-column-names -e "${query}"`);
    assert.equal(r.code, 0, `${host}: ${query}: ${r.stderr}`);
    return r.stdout.trim();
}

async function caughtUp(lab: Lab, withinMs: number): Promise<boolean> {
    const deadline = Date.now() + withinMs;
    while (Date.now() < deadline) {
        const [p, r] = await Promise.all([sql(lab, PRIMARY, "SELECT @@gtid_binlog_pos"), sql(lab, REPLICA, "SELECT @@gtid_slave_pos")]);
        if (p !== "" && p === r) return true;
        await new Promise((res) => setTimeout(res, 250));
    }
    return false;
}

describe("MariaDB replication across sites", { skip, timeout: 900_000 }, () => {
    let lab: Lab;
    before(async () => {
        lab = new Lab();
        await lab.up();
        await provision(lab, LAB_STACKS.old); // primary, with the binary log
        const w = await lab.enter(PRIMARY, WRITER);
        assert.equal(w.code, 0, w.stderr);
        const waiting = await provision(lab, LAB_STACKS.new); // replica waits: old does not know new's members yet
        assert.match(JSON.stringify(waiting.runs), /new-db-new-db-1/);
        await provision(lab, LAB_STACKS.old); // old takes in new's mesh members
        await provision(lab, LAB_STACKS.new); // the replica seeds from a streamed snapshot, then replicates
    });
    after(async () => {
        await Lab.down();
    });

    it("seeds and replicates while the primary keeps taking writes: identical rows, checksums and GTID position", async () => {
        const before = Number(await sql(lab, PRIMARY, "SELECT COUNT(*) FROM app.writes"));
        await new Promise((r) => setTimeout(r, 1500));
        await stopWriter(lab, PRIMARY);
        assert.ok(await caughtUp(lab, 30_000), "the replica did not catch up within 30 s");
        const [pc, rc] = await Promise.all([sql(lab, PRIMARY, "SELECT COUNT(*) FROM app.writes"), sql(lab, REPLICA, "SELECT COUNT(*) FROM app.writes")]);
        assert.ok(Number(pc) > before, "the writer was not writing during the test");
        assert.equal(rc, pc);
        const [pk, rk] = await Promise.all([sql(lab, PRIMARY, "CHECKSUM TABLE app.writes"), sql(lab, REPLICA, "CHECKSUM TABLE app.writes")]);
        assert.equal(rk, pk);
        assert.deepEqual(await lostOnReplica(lab, PRIMARY, (await sql(lab, REPLICA, "SELECT seq FROM app.writes")).split("\n")), []);
    });

    it("never restarted the primary: not one write failed while the other site was added", async () => {
        const failed = (await lab.enter(PRIMARY, "cat /tmp/writer-failed 2>/dev/null | wc -l")).stdout.trim();
        assert.equal(failed, "0", "writes failed on the live primary while the program ran");
    });

    it("refuses a replication client without TLS, even with the right password", async () => {
        const kept = JSON.parse(fs.readFileSync(path.join(LAB_DIR, "resources-lab-old.json"), "utf8"));
        const password = kept["random:index/randomPassword:RandomPassword::old-db-replication"].result.state.result.secret as string;
        const plain = await lab.enter(REPLICA, `mariadb --skip-ssl -h ${PRIMARY_MESH} -u repl -p'${password}' -e 'SELECT 1' 2>&1`);
        assert.notEqual(plain.code, 0);
        assert.match(plain.stdout, /Access denied/);
        const tls = await lab.enter(REPLICA, `mariadb --ssl --ssl-ca=/etc/mysql/cutover/ca.pem --ssl-verify-server-cert -h ${PRIMARY_MESH} -u repl -p'${password}' -N -e 'SELECT 1' 2>&1`);
        assert.equal(tls.stdout.trim(), "1", `the same client over verified TLS is refused: ${tls.stdout}`);
    });

    it("refuses a primary whose certificate the program's CA did not sign", async () => {
        const r = await lab.enter(REPLICA, `mariadb --ssl --ssl-ca=/etc/ssl/certs/ca-certificates.crt --ssl-verify-server-cert -h ${PRIMARY_MESH} -u repl -px -e 'SELECT 1' 2>&1`);
        assert.notEqual(r.code, 0);
        assert.match(r.stdout, /certificate|SSL|TLS/i);
    });

    it("catches up after the link between the sites was cut for a while", async () => {
        await lab.enter(PRIMARY, WRITER);
        await cutWhileWriting(lab, async (h) => Number(await sql(lab, h, "SELECT COUNT(*) FROM app.writes")), PRIMARY, REPLICA);
        await new Promise((r) => setTimeout(r, 1000));
        await stopWriter(lab, PRIMARY);
        assert.ok(await caughtUp(lab, 90_000), "the replica did not catch up within 90 s of the link coming back");
        assert.deepEqual(await lostOnReplica(lab, PRIMARY, (await sql(lab, REPLICA, "SELECT seq FROM app.writes")).split("\n")), []);
    });

    it("a freeze that ends at its deadline leaves the replica applying (nothing of the event reaches the binary log)", async () => {
        // The runbook's own freeze SQL, as an abort that cannot reach the primary leaves it.
        // Three seconds: a busy machine still reads it frozen first.
        await sql(lab, PRIMARY, freezeSql(3));
        assert.equal(await sql(lab, PRIMARY, "SELECT @@read_only"), "1");
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline && (await sql(lab, PRIMARY, "SELECT @@read_only")) !== "0") await new Promise((r) => setTimeout(r, 200));
        assert.equal(await sql(lab, PRIMARY, "SELECT @@read_only"), "0", "the event did not unfreeze the primary at its deadline");
        await sql(lab, PRIMARY, "INSERT INTO app.writes(seq, payload) VALUES(2000000001, 'after the freeze')");
        assert.ok(await caughtUp(lab, 30_000), "the replica did not catch up after the freeze ended");
        const status = (await lab.enter(REPLICA, "mariadb -e 'SHOW SLAVE STATUS\\G'")).stdout;
        assert.match(status, /Slave_SQL_Running: Yes/, `the replica stopped applying: ${status}`);
        assert.equal(await sql(lab, REPLICA, "SELECT COUNT(*) FROM app.writes WHERE seq = 2000000001"), "1");
        // The spent event is kept (disabled) on the primary only; the next freeze replaces it.
        const [name] = UNFREEZE_EVENT.split(".").reverse();
        assert.equal(await sql(lab, PRIMARY, `SELECT status FROM information_schema.events WHERE event_name = '${name}'`), "DISABLED");
    });

    it("runs no database step when the program runs again unchanged", async () => {
        const runs = [...(await provision(lab, LAB_STACKS.old)).runs, ...(await provision(lab, LAB_STACKS.new)).runs];
        assert.deepEqual(runs.filter((r) => r.action !== "unchanged").map((r) => r.step), []);
    });

    it("dual-primary: both sites take writes, keys never collide (an app's pooled session too), and both end identical", async () => {
        // An app's pooled connection, opened before dual-primary begins: it keeps the
        // auto_increment values it connected with. One mariadb session reads statements from a FIFO.
        const pooled = await lab.enter(PRIMARY, `rm -f ${POOLED}.in ${POOLED}.out && mkfifo ${POOLED}.in
setsid nohup sh -c 'sleep 900 > ${POOLED}.in' </dev/null >/dev/null 2>&1 &
setsid nohup sh -c 'mariadb --batch --unbuffered --skip-column-names < ${POOLED}.in > ${POOLED}.out 2>&1' </dev/null >/dev/null 2>&1 &
echo "SELECT 'connected', CONNECTION_ID();" > ${POOLED}.in
for _ in $(seq 1 50); do grep -q connected ${POOLED}.out 2>/dev/null && break; sleep 0.1; done; cat ${POOLED}.out`);
        assert.match(pooled.stdout, /^connected\t\d+$/m, `the pooled session did not connect: ${pooled.stdout} ${pooled.stderr}`);
        const dual = { "cutover:database": JSON.stringify({ engine: "mariadb", phase: "dual-primary" }) };
        await provision(lab, LAB_STACKS.old, { config: dual }); // old also copies new
        await provision(lab, LAB_STACKS.new, { config: dual }); // new takes writes, with its own key offset
        const offsets = await Promise.all([PRIMARY, REPLICA].map((h) => sql(lab, h, "SELECT CONCAT(@@auto_increment_increment, '/', @@auto_increment_offset, '/', @@read_only)")));
        assert.equal(offsets[0].split("/")[0], "2");
        assert.notEqual(offsets[0].split("/")[1], offsets[1].split("/")[1], "both sites mint keys of the same residue class");
        assert.ok(offsets.every((o) => /\/(0|OFF)$/.test(o)), `a site is still read-only: ${offsets}`);

        // One writer per site, through each site's own server, with seq ranges apart.
        await lab.enter(PRIMARY, WRITER);
        await lab.enter(REPLICA, WRITER.replace('i=$(mariadb -N -e "SELECT COALESCE(MAX(seq),0) FROM app.writes")', "i=1000000000"));
        // Meanwhile the pooled session on the old site inserts too, one row at a time.
        await lab.enter(PRIMARY, `for i in $(seq 1 300); do echo "INSERT INTO app.writes(seq,payload) VALUES($((3000000000 + i)), 'pooled');"; sleep 0.01; done > ${POOLED}.in
echo "SELECT 'pooled', @@session.auto_increment_increment, @@session.auto_increment_offset;" > ${POOLED}.in`);
        await new Promise((r) => setTimeout(r, 4000));
        await Promise.all([PRIMARY, REPLICA].map((h) => lab.enter(h, "touch /tmp/writer-stop; sleep 0.5")));
        const deadline = Date.now() + 60_000;
        let sides: string[] = [];
        while (Date.now() < deadline) {
            sides = await Promise.all([PRIMARY, REPLICA].map((h) => sql(lab, h, "SELECT CONCAT(COUNT(*), ' ', COUNT(DISTINCT id), ' ', BIT_XOR(CRC32(CONCAT(id, ':', seq)))) FROM app.writes")));
            if (sides[0] === sides[1]) break;
            await new Promise((r) => setTimeout(r, 500));
        }
        assert.equal(sides[1], sides[0], "the two sites differ after both writers stopped");
        for (const h of [PRIMARY, REPLICA]) {
            const state = await sql(lab, h, "SELECT 1"); // reachable
            assert.equal(state, "1");
            const status = (await lab.enter(h, "mariadb -e 'SHOW SLAVE STATUS\\G' | grep -E 'Slave_(IO|SQL)_Running:'")).stdout;
            assert.match(status, /Slave_IO_Running: Yes[\s\S]*Slave_SQL_Running: Yes/, `${h}: replication stopped (a key collided?): ${status}`);
        }
        const session = (await lab.enter(PRIMARY, `cat ${POOLED}.out; pkill -f 'sleep 900' || true`)).stdout;
        assert.match(session, /^pooled\t2\t\d+$/m, `the pooled session mints keys 1 apart: ${session.slice(-300)}`);
        assert.equal(Number(await sql(lab, REPLICA, "SELECT COUNT(*) FROM app.writes WHERE payload = 'pooled'")), 300, "the pooled session's rows did not all reach the new site");
        const newRows = Number(await sql(lab, REPLICA, "SELECT COUNT(*) FROM app.writes WHERE seq > 1000000000 AND payload <> 'pooled'"));
        const oldRows = Number(await sql(lab, PRIMARY, "SELECT COUNT(*) FROM app.writes WHERE seq > 1000000000 AND payload <> 'pooled'"));
        assert.ok(newRows > 0, "the new site's writer wrote nothing");
        assert.equal(oldRows, newRows, "writes on the new site did not all reach the old site");
        for (const h of [PRIMARY, REPLICA]) {
            const failed = (await lab.enter(h, "cat /tmp/writer-failed 2>/dev/null | wc -l")).stdout.trim();
            assert.equal(failed, "0", `${h}: writes failed`);
        }
    });
});
