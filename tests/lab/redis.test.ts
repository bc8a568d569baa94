// Redis replication from the old site to the new one through stunnel with client
// certificates, on real redis-server and stunnel in lab hosts, over the tinc mesh,
// provisioned by the program, with a writer on the old primary the whole time.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { Lab, LAB_DIR } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { REDIS_AUTH, redisCli } from "../../lab/flip";
import { cutWhileWriting, lostOnReplica, replicateWhileWriting, stopWriter, waitIdentical } from "./replication";

const skip = labSkip(["redis-server", "stunnel4", "tincd"]);

const PRIMARY = "old-db-1";
const REPLICA = "new-db-1";
const PRIMARY_MESH = "198.18.1.110";
const config = (phase: string) => ({ "cutover:cache": JSON.stringify({ engine: "redis", phase }) });

/** redis-cli with the host's own password (read from the file the program wrote). */
const CLI = `${REDIS_AUTH} redis-cli --no-auth-warning`;
const WRITER = `rm -f /tmp/writer-stop /tmp/writer-acked /tmp/writer-failed
cat > /tmp/writer.sh <<'WRITER'
i=$(${CLI} LLEN writes)
while [ ! -e /tmp/writer-stop ]; do
    i=$((i+1))
    if [ "$(${CLI} RPUSH writes $i 2>/dev/null)" -gt 0 ] 2>/dev/null; then echo $i >> /tmp/writer-acked; else echo $i >> /tmp/writer-failed; fi
done
WRITER
setsid nohup bash /tmp/writer.sh </dev/null >/dev/null 2>&1 &
sleep 1`;


const content = async (lab: Lab, host: string) => (await lab.enter(host, `echo "$(${CLI} LLEN writes) $(${CLI} LRANGE writes 0 -1 | sha256sum | cut -c1-16)"`)).stdout.trim();

describe("Redis replication across sites through stunnel", { skip, timeout: 900_000 }, () => {
    let lab: Lab;
    before(async () => {
        lab = new Lab();
        await lab.up();
        await replicateWhileWriting(lab, config, PRIMARY, WRITER);
    });
    after(async () => {
        await Lab.down();
    });

    it("syncs and replicates while the primary keeps taking writes: identical length and content hash", async () => {
        const before = Number(await redisCli(lab, PRIMARY, "LLEN writes"));
        await new Promise((r) => setTimeout(r, 1500));
        await stopWriter(lab, PRIMARY);
        const { primary, replica } = await waitIdentical((h) => content(lab, h), PRIMARY, REPLICA, 30_000);
        assert.equal(replica, primary, "the replica did not reach the primary's content within 30 s");
        assert.ok(Number(primary.split(" ")[0]) > before, "the writer was not writing during the test");
        assert.deepEqual(await lostOnReplica(lab, PRIMARY, (await redisCli(lab, REPLICA, "LRANGE writes 0 -1")).split("\n")), []);
        assert.equal((await lab.enter(PRIMARY, "cat /tmp/writer-failed 2>/dev/null | wc -l")).stdout.trim(), "0", "writes failed on the live primary while the program ran");
        const outputs = JSON.parse(fs.readFileSync(path.join(LAB_DIR, "outputs-lab-new.json"), "utf8"));
        assert.equal(outputs.cache.state.role, "replica");
    });

    it("reaches the primary only through stunnel, and stunnel only with a certificate from the program's CAs", async () => {
        const password = (await lab.enter(PRIMARY, `awk '$1 == "requirepass" { gsub(/"/, "", $2); print $2 }' /etc/redis/cutover-auth.conf`)).stdout.trim();
        const tlsPing = (certArgs: string) =>
            lab.enter(REPLICA, `(printf 'AUTH ${password}\\r\\nPING\\r\\n'; sleep 1) | timeout 5 openssl s_client -quiet -connect ${PRIMARY_MESH}:6380 -CAfile /etc/stunnel/cutover/ca.pem -verify_return_error ${certArgs} 2>&1`);
        const good = await tlsPing("-cert /etc/stunnel/cutover/client.pem -key /etc/stunnel/cutover/client.key");
        assert.match(good.stdout, /\+PONG/, `the program's client certificate is refused: ${good.stdout}`);
        const none = await tlsPing("");
        assert.doesNotMatch(none.stdout, /\+PONG/, "stunnel let a client without a certificate through");
        await lab.enter(REPLICA, "cd /tmp && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=forged -days 1 -keyout forged.key -out forged.pem 2>/dev/null");
        const forged = await tlsPing("-cert /tmp/forged.pem -key /tmp/forged.key");
        assert.doesNotMatch(forged.stdout, /\+PONG/, "stunnel let a self-signed client certificate through");
        const direct = await lab.enter(REPLICA, `REDISCLI_AUTH=${password} timeout 5 redis-cli --no-auth-warning -h ${PRIMARY_MESH} -p 6379 PING 2>&1`);
        assert.doesNotMatch(direct.stdout, /PONG/, "Redis answers on the mesh address without TLS");
    });

    it("catches up after the link between the sites was cut for a while", async () => {
        await lab.enter(PRIMARY, WRITER);
        await cutWhileWriting(lab, async (h) => Number(await redisCli(lab, h, "LLEN writes")), PRIMARY, REPLICA);
        await new Promise((r) => setTimeout(r, 1000));
        await stopWriter(lab, PRIMARY);
        const { primary, replica } = await waitIdentical((h) => content(lab, h), PRIMARY, REPLICA, 90_000);
        assert.equal(replica, primary, "the replica did not catch up within 90 s of the link coming back");
        assert.deepEqual(await lostOnReplica(lab, PRIMARY, (await redisCli(lab, REPLICA, "LRANGE writes 0 -1")).split("\n")), []);
    });

    it("runs no cache step when the program runs again unchanged", async () => {
        const runs = [...(await provision(lab, LAB_STACKS.old, { config: config("primary") })).runs, ...(await provision(lab, LAB_STACKS.new, { config: config("replica") })).runs];
        assert.deepEqual(runs.filter((r) => r.action !== "unchanged").map((r) => r.step), []);
    });

    it("promotes the replica with REPLICAOF NO ONE: it takes writes and keeps every entry", async () => {
        const entries = Number(await redisCli(lab, REPLICA, "LLEN writes"));
        await provision(lab, LAB_STACKS.new, { config: config("primary") });
        assert.match(await redisCli(lab, REPLICA, "INFO replication"), /role:master/);
        assert.equal(Number(await redisCli(lab, REPLICA, "RPUSH writes after-promotion")), entries + 1);
    });
});
