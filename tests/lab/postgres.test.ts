// PostgreSQL streaming replication from the old site to the new one on real postgres in
// lab hosts, over the tinc mesh, TLS and client certificates, provisioned by the program,
// with a writer on the old primary the whole time.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { Lab, LAB_DIR } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS, WITHOUT_FLIP, provision } from "../../lab/runtime";
import { cutWhileWriting, lostOnReplica, replicateWhileWriting, stopWriter, waitIdentical } from "./replication";

const skip = labSkip(["pg_ctlcluster", "tincd"]);

const PRIMARY = "old-db-1";
const REPLICA = "new-db-1";
const PRIMARY_MESH = "198.18.1.110";
const config = (phase: string) => ({ ...WITHOUT_FLIP, "cutover:database": JSON.stringify({ engine: "postgres", phase }) });

const PSQL = "runuser -u postgres -- psql -X -q -At";
/** One INSERT per statement; each acknowledged seq is logged, each failure too. */
const WRITER = `${PSQL} -c "CREATE TABLE IF NOT EXISTS writes (id BIGSERIAL PRIMARY KEY, seq BIGINT NOT NULL UNIQUE, payload TEXT)"
rm -f /tmp/writer-stop /tmp/writer-acked /tmp/writer-failed
setsid nohup bash -c 'i=$(${PSQL} -c "SELECT COALESCE(MAX(seq),0) FROM writes"); while [ ! -e /tmp/writer-stop ]; do i=$((i+1)); if ${PSQL} -c "INSERT INTO writes(seq,payload) VALUES($i, repeat(\\$\\$x\\$\\$,100))" 2>/dev/null; then echo $i >> /tmp/writer-acked; else echo $i >> /tmp/writer-failed; fi; done' </dev/null >/dev/null 2>&1 &
sleep 1`;
const CONTENT = "SELECT count(*) || ' ' || md5(string_agg(seq || ':' || payload, ',' ORDER BY seq)) FROM writes";

async function sql(lab: Lab, host: string, query: string): Promise<string> {
    const r = await lab.enter(host, `${PSQL} -c "${query}"`);
    assert.equal(r.code, 0, `${host}: ${query}: ${r.stderr}`);
    return r.stdout.trim();
}

describe("PostgreSQL replication across sites", { skip, timeout: 900_000 }, () => {
    let lab: Lab;
    before(async () => {
        lab = new Lab();
        await lab.up();
        await replicateWhileWriting(lab, config, PRIMARY, WRITER);
    });
    after(async () => {
        await Lab.down();
    });

    it("builds the replica while the primary keeps taking writes: identical rows and content hash", async () => {
        const before = Number((await sql(lab, PRIMARY, "SELECT count(*) FROM writes")));
        await new Promise((r) => setTimeout(r, 1500));
        await stopWriter(lab, PRIMARY);
        const { primary, replica } = await waitIdentical((h) => sql(lab, h, CONTENT), PRIMARY, REPLICA, 30_000);
        assert.equal(replica, primary, "the replica did not reach the primary's content within 30 s");
        assert.ok(Number(primary.split(" ")[0]) > before, "the writer was not writing during the test");
        assert.deepEqual(await lostOnReplica(lab, PRIMARY, (await sql(lab, REPLICA, "SELECT seq FROM writes")).split("\n")), []);
        const failed = (await lab.enter(PRIMARY, "cat /tmp/writer-failed 2>/dev/null | wc -l")).stdout.trim();
        assert.equal(failed, "0", "writes failed on the live primary while the program ran");
    });

    it("streams over TLS with the replica's client certificate, and reports it in the db output", async () => {
        const ssl = await sql(lab, PRIMARY, "SELECT s.ssl || ' ' || s.client_dn FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)");
        assert.match(ssl, /^true \/CN=replicator/);
        const outputs = JSON.parse(fs.readFileSync(path.join(LAB_DIR, "outputs-lab-new.json"), "utf8"));
        assert.equal(outputs.db.state.role, "replica");
        assert.match(outputs.db.state.position, /^[0-9A-F]+\/[0-9A-F]+$/);
    });

    it("refuses a replication client without a certificate from the program's CAs", async () => {
        const base = `host=${PRIMARY_MESH} user=replicator dbname=replication replication=true sslrootcert=/etc/postgresql/cutover/ca.pem`;
        const ask = (conninfo: string) => lab.enter(REPLICA, `cd /tmp && runuser -u postgres -- psql -X -At "${conninfo}" -c IDENTIFY_SYSTEM 2>&1`);
        const good = await ask(`${base} sslmode=verify-full sslcert=/etc/postgresql/cutover/replication.pem sslkey=/etc/postgresql/cutover/replication.key`);
        assert.equal(good.code, 0, `the program's own client certificate is refused: ${good.stdout}`);
        const none = await ask(`${base} sslmode=verify-full sslcert=/nonexistent sslkey=/nonexistent`);
        assert.notEqual(none.code, 0);
        assert.match(none.stdout, /certificate/);
        // A self-signed certificate with the right name.
        const forged = await lab.enter(REPLICA, `cd /tmp && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=replicator -days 1 -keyout forged.key -out forged.pem 2>/dev/null && chown postgres forged.* && chmod 600 forged.key`);
        assert.equal(forged.code, 0, forged.stderr);
        const wrong = await ask(`${base} sslmode=verify-full sslcert=/tmp/forged.pem sslkey=/tmp/forged.key`);
        assert.notEqual(wrong.code, 0, `a forged certificate was accepted: ${wrong.stdout}`);
        const plain = await ask(`${base} sslmode=disable`);
        assert.notEqual(plain.code, 0);
        assert.match(plain.stdout, /pg_hba\.conf rejects|no encryption/);
    });

    it("catches up after the link between the sites was cut for a while", async () => {
        await lab.enter(PRIMARY, WRITER);
        await cutWhileWriting(lab, async (h) => Number(await sql(lab, h, "SELECT count(*) FROM writes")), PRIMARY, REPLICA);
        await new Promise((r) => setTimeout(r, 1000));
        await stopWriter(lab, PRIMARY);
        const { primary, replica } = await waitIdentical((h) => sql(lab, h, CONTENT), PRIMARY, REPLICA, 90_000);
        assert.equal(replica, primary, "the replica did not catch up within 90 s of the link coming back");
        assert.deepEqual(await lostOnReplica(lab, PRIMARY, (await sql(lab, REPLICA, "SELECT seq FROM writes")).split("\n")), []);
    });

    it("runs no database step when the program runs again unchanged", async () => {
        const runs = [...(await provision(lab, LAB_STACKS.old, { config: config("primary") })).runs, ...(await provision(lab, LAB_STACKS.new, { config: config("replica") })).runs];
        assert.deepEqual(runs.filter((r) => r.action !== "unchanged").map((r) => r.step), []);
    });

    it("promotes the replica with pg_promote(): it takes writes and keeps every row", async () => {
        const rows = await sql(lab, REPLICA, "SELECT count(*) FROM writes");
        const run = await provision(lab, LAB_STACKS.new, { config: config("primary") });
        assert.ok(run.runs.some((r) => r.step.includes("new-db") && r.action !== "unchanged"));
        assert.equal(await sql(lab, REPLICA, "SELECT pg_is_in_recovery()"), "f");
        await sql(lab, REPLICA, "INSERT INTO writes(seq, payload) VALUES (-1, 'after promotion')");
        assert.equal(Number(await sql(lab, REPLICA, "SELECT count(*) FROM writes")), Number(rows) + 1);
    });
});
