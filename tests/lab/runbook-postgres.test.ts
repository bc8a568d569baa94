// OneSignal's t0..t5 on PostgreSQL in the lab: real PostgreSQL streaming over the mesh
// with client certificates, Redis replicating through stunnel on the same hosts, HAProxy
// holding writes, the outgoing server stopped cleanly and the incoming one (and its Redis)
// promoted by the program after a flip of cutover:live, under 50 writes/s through the old
// edge and a job worker writing to the outgoing Redis. Every acknowledged write must be a
// row in the live database once, and every acknowledged Redis write in the live Redis.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { FlipRun, edgeAdmin, flipFigures, flipUnderLoad, recordedWrites, redisCli, startRedisWriter, stopRedisWriter } from "../../lab/flip";

const skip = labSkip(["haproxy", "socat", "python3", "tincd", "pg_ctlcluster", "redis-server", "stunnel4"]);

const URL = "http://192.0.2.10/";
const DB = { old: "old-db-1", new: "new-db-1" } as const;
const site = (phase: string) => ({ "cutover:database": JSON.stringify({ engine: "postgres", phase }), "cutover:cache": JSON.stringify({ engine: "redis", phase }) });
const OLD = site("primary");
const NEW = site("replica");

const redisRole = async (lab: Lab, host: string) => {
    const info = await redisCli(lab, host, "INFO replication");
    return `${/^role:(\w+)/m.exec(info)?.[1]}${/^master_link_status:(\w+)/m.exec(info) ? ` link ${/^master_link_status:(\w+)/m.exec(info)![1]}` : ""}`;
};

async function sql(lab: Lab, host: string, query: string): Promise<string> {
    const r = await lab.enter(host, `runuser -u postgres -- psql -X -q -At -c "${query}"`);
    assert.equal(r.code, 0, `${host}: ${query}: ${r.stderr}`);
    return r.stdout.trim();
}

/**
 * The plain flips' freeze: room for a slow machine (CI's rollback aborted, safely, "too close to
 * the freeze deadline" with the 5 s default); the deadline's abort has its own test below.
 */
const ROOMY = { freezeMs: 8000 };

function flip(lab: Lab, client: string, live: "old" | "new", runbook: Record<string, unknown> = {}): Promise<FlipRun> {
    // The load runs until 3 s after the program finished (60 s at most), however long it takes here.
    return flipUnderLoad(lab, { url: URL, client, rate: 50, seconds: 60, leadMs: 1500, tailMs: 3000, config: { ...NEW, "cutover:live": live, "cutover:runbook": JSON.stringify(runbook) } });
}

async function figures(lab: Lab, run: FlipRun, client: string, liveDb: string) {
    return flipFigures(run.writes, await recordedWrites(lab, liveDb, client, "postgres"), run.from, run.to);
}

function servedAtTheEnd(run: FlipRun): string[] {
    const end = Math.max(...run.writes.map((w) => w.sent));
    return [...new Set(run.writes.filter((w) => w.sent > end - 1000 && w.status === 200).map((w) => w.served))];
}

describe("the cutover runbook on PostgreSQL (freeze, promote, t0..t5)", { skip, timeout: 1_800_000 }, () => {
    let lab: Lab;
    before(async () => {
        lab = new Lab();
        await lab.up();
        await provision(lab, LAB_STACKS.old, { config: OLD });
        await provision(lab, LAB_STACKS.new, { config: { ...NEW, "cutover:runbook": "{}" } });
        await provision(lab, LAB_STACKS.old, { config: OLD });
        await provision(lab, LAB_STACKS.new, { config: { ...NEW, "cutover:runbook": "{}" } });
    });
    after(async () => {
        await Lab.down();
    });

    it("serves the old site; the new server is a standby streaming from the old one", async () => {
        assert.equal(await edgeAdmin(lab, "old-edge-1", "cutover live"), "live old hold off");
        assert.equal(await sql(lab, DB.new, "SELECT pg_is_in_recovery()"), "t");
        assert.equal(await sql(lab, DB.new, "SELECT status FROM pg_stat_wal_receiver"), "streaming");
        assert.equal(await redisRole(lab, DB.new), "slave link up");
    });

    it("cutover old -> new under load: none failed, none lost, none twice; the old server follows the new one", async () => {
        await startRedisWriter(lab, DB.old, "jobs_pgcut");
        const run = await flip(lab, "pgcut", "new", ROOMY);
        const jobs = await stopRedisWriter(lab, DB.old, "jobs_pgcut", DB.new);
        assert.equal(run.error, undefined, run.error);
        assert.equal(jobs.lost, 0, "acknowledged Redis writes on the old site are missing on the new one");
        assert.ok(jobs.writes - jobs.failed >= 100, `only ${jobs.writes - jobs.failed} Redis writes acknowledged`);
        assert.equal(await redisRole(lab, DB.new), "master");
        assert.equal(await redisRole(lab, DB.old), "slave link up");
        // The old Redis follows the new one now: a write there arrives on the old site.
        await redisCli(lab, DB.new, "SET after-cutover yes");
        for (let i = 0; i < 50 && (await redisCli(lab, DB.old, "GET after-cutover")) !== "yes"; i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(await redisCli(lab, DB.old, "GET after-cutover"), "yes");
        assert.deepEqual(run.steps.map((s) => s.step.replace(/^new-runbook-/, "")), ["precheck", "freeze", "switch", "resume"]);
        const f = await figures(lab, run, "pgcut", DB.new);
        assert.ok(f.writes >= 400, `only ${f.writes} writes`);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.deepEqual(servedAtTheEnd(run), ["new new-app-1"]);
        assert.equal(run.audit?.lostTransactions, 0);
        assert.equal(run.audit?.engine, "postgres");
        assert.equal(await sql(lab, DB.new, "SELECT pg_is_in_recovery()"), "f");
        assert.equal(await sql(lab, DB.old, "SELECT pg_is_in_recovery()"), "t");
        assert.equal(await sql(lab, DB.old, "SELECT status FROM pg_stat_wal_receiver"), "streaming");
    });

    it("a second run with nothing changed runs no step; the ensure-steps keep the runbook's roles", async () => {
        // The old stack's first run after the flip takes in the peer's new live site (its edge's config).
        await provision(lab, LAB_STACKS.old, { config: OLD });
        const runs = [...(await provision(lab, LAB_STACKS.old, { config: OLD })).runs, ...(await provision(lab, LAB_STACKS.new, { config: { ...NEW, "cutover:live": "new", "cutover:runbook": JSON.stringify(ROOMY) } })).runs];
        assert.deepEqual(runs.filter((r) => r.action !== "unchanged").map((r) => `${r.host} ${r.step}`), []);
        assert.equal(await sql(lab, DB.old, "SELECT pg_is_in_recovery()"), "t", "the old site's ensure-step promoted its server again");
        assert.equal(await redisRole(lab, DB.old), "slave link up");
    });

    it("a runbook setting changed after the cutover runs the precheck again first, and no step changes a role", async () => {
        // CI: back to the default freeze, the freeze alone ran again with the cutover's precheck output and failed on old-db-1.
        const { runs } = await provision(lab, LAB_STACKS.new, { config: { ...NEW, "cutover:live": "new", "cutover:runbook": "{}" } });
        assert.deepEqual(runs.filter((r) => r.action !== "unchanged").map((r) => `${r.host} ${r.step} ${r.action}`), [
            "new-db-1 new-runbook-precheck update",
            "old-db-1 new-runbook-freeze update",
            "new-db-1 new-runbook-switch update",
            "old-db-1 new-runbook-resume update",
        ]);
        assert.equal(await sql(lab, DB.new, "SELECT pg_is_in_recovery()"), "f");
        assert.equal(await sql(lab, DB.old, "SELECT status FROM pg_stat_wal_receiver"), "streaming");
        assert.equal(await redisRole(lab, DB.new), "master");
        assert.equal(await redisRole(lab, DB.old), "slave link up");
        assert.equal(await edgeAdmin(lab, "old-edge-1", "cutover live"), "live new hold off");
    });

    it("flipping back is the rollback: nothing lost, none failed, writes end on the old site; a replication PING inside the window is not a write", async () => {
        // The outgoing Redis pings its replica every second (default 10 s), and the hook takes 1.5 s:
        // PINGs move its offset between the pause and the fence (an abort, 'took writes after its
        // pause ended', before the fence read the write counter), and its write counter stays.
        assert.equal(await redisCli(lab, DB.new, "CONFIG SET repl-ping-replica-period 1"), "OK");
        await startRedisWriter(lab, DB.new, "jobs_pgback");
        const run = await flip(lab, "pgback", "old", { ...ROOMY, validate: "sleep 1.5" });
        await redisCli(lab, DB.new, "CONFIG SET repl-ping-replica-period 10");
        const jobs = await stopRedisWriter(lab, DB.new, "jobs_pgback", DB.old);
        assert.equal(run.error, undefined, run.error);
        assert.equal(jobs.lost, 0, "acknowledged Redis writes on the new site are missing on the old one");
        assert.equal(await redisRole(lab, DB.old), "master");
        assert.equal(await redisRole(lab, DB.new), "slave link up");
        // Both job writers' entries are in the live Redis.
        assert.ok(Number(await redisCli(lab, DB.old, "LLEN jobs_pgcut")) > 0);
        const f = await figures(lab, run, "pgback", DB.old);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.deepEqual(servedAtTheEnd(run), ["old old-app-1"]);
        assert.equal(await sql(lab, DB.new, "SELECT status FROM pg_stat_wal_receiver"), "streaming");
        // Both runs' rows are on the old server, which is live again.
        const clients = await lab.enter(DB.old, `runuser -u postgres -- psql -X -q -At -d cutover_probe -c "SELECT count(DISTINCT client) FROM writes WHERE client IN ('pgcut', 'pgback')"`);
        assert.equal(clients.stdout.trim(), "2", clients.stderr);
    });

    it("validation fails after promotion: the new server shuts itself down, the old one comes back and serves, nothing lost; the next run rebuilds the new one", async () => {
        const run = await flip(lab, "pgabort", "new", { validate: "exit 3", attempt: 2 });
        assert.match(run.error ?? "", /switch on new-db-1: validation failed: cutover:runbook\.validate exited non-zero.*aborted: old stays live; new-db-1 was shut down: set cutover:live back to old/s);
        const f = await figures(lab, run, "pgabort", DB.old);
        assert.deepEqual({ lost: f.lost, duplicated: f.duplicated }, { lost: 0, duplicated: 0 });
        assert.equal(f.failed, 0, "writes failed while the old server came back (the edges should hold them)");
        assert.deepEqual(servedAtTheEnd(run), ["old old-app-1"]);
        assert.equal(await sql(lab, DB.old, "SELECT pg_is_in_recovery()"), "f");
        // The new Redis, promoted before the database, follows the old one again, which takes writes.
        assert.equal(await redisRole(lab, DB.old), "master");
        // Re-attached in the abort (not waited for: the edges were holding); the resync follows.
        let role = "";
        for (let i = 0; i < 100 && (role = await redisRole(lab, DB.new)) !== "slave link up"; i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(role, "slave link up");
        assert.equal(Number(await redisCli(lab, DB.old, "RPUSH after-abort 1")), 1);
        // Flipping back (as the error says) rebuilds the aborted server as a standby (its data kept aside).
        const again = await provision(lab, LAB_STACKS.new, { config: { ...NEW, "cutover:live": "old", "cutover:runbook": JSON.stringify({ attempt: 3 }) } });
        assert.ok(again.runs.some((r) => r.step === "new-runbook-resume" && r.action !== "unchanged"));
        assert.equal(await sql(lab, DB.new, "SELECT status FROM pg_stat_wal_receiver"), "streaming");
        assert.match((await lab.enter(DB.new, "ls -d /var/lib/postgresql/*/main.cutover-aborted-*")).stdout, /main\.cutover-aborted-\d+/);
    });

    it("the outgoing Redis's pause ends before the commit (a switch slower than the freeze): abort, every Redis write kept, the old site serves", async () => {
        // The validation hook ends the pause early, as its deadline does on a slow switch,
        // and gives the job worker time to write there before the commit.
        await startRedisWriter(lab, DB.old, "jobs_pgslow");
        // Room in the freeze (ROOMY), so a slow machine reaches the hook before the deadline check.
        const run = await flip(lab, "pgslow", "new", { ...ROOMY, validate: "rother CLIENT UNPAUSE >/dev/null; sleep 0.5", attempt: 4 });
        const jobs = await stopRedisWriter(lab, DB.old, "jobs_pgslow", DB.old);
        assert.match(run.error ?? "", /switch on new-db-1: Redis on old-db-1 took writes after its pause ended \(offset \d+, \d+ at the pause\).*aborted: old stays live/s);
        assert.equal(jobs.lost, 0);
        assert.ok(jobs.writes - jobs.failed >= 50, `only ${jobs.writes - jobs.failed} Redis writes acknowledged`);
        const f = await figures(lab, run, "pgslow", DB.old);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.deepEqual(servedAtTheEnd(run), ["old old-app-1"]);
        assert.equal(await sql(lab, DB.old, "SELECT pg_is_in_recovery()"), "f");
        assert.equal(await redisRole(lab, DB.old), "master");
        // Not fenced: the old Redis takes writes; the new one follows it again, with what the worker wrote.
        assert.equal(Number(await redisCli(lab, DB.old, "RPUSH after-slow 1")), 1);
        let role = "";
        for (let i = 0; i < 100 && (role = await redisRole(lab, DB.new)) !== "slave link up"; i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(role, "slave link up");
        let copied = "";
        for (let i = 0; i < 50 && (copied = await redisCli(lab, DB.new, "LLEN jobs_pgslow")) !== (await redisCli(lab, DB.old, "LLEN jobs_pgslow")); i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(copied, await redisCli(lab, DB.old, "LLEN jobs_pgslow"), "the new Redis lacks what the worker wrote");
        // The next run rebuilds the new server as a standby, as after any abort past the promotion.
        await provision(lab, LAB_STACKS.new, { config: { ...NEW, "cutover:live": "old", "cutover:runbook": JSON.stringify({ attempt: 5 }) } });
        assert.equal(await sql(lab, DB.new, "SELECT status FROM pg_stat_wal_receiver"), "streaming");
    });
});
