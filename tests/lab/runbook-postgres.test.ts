// OneSignal's t0..t5 on PostgreSQL in the lab: real PostgreSQL streaming over the mesh
// with client certificates, HAProxy holding writes, the outgoing server stopped cleanly and
// the incoming one promoted by the program after a flip of cutover:live, under 50 writes/s
// through the old edge. Every acknowledged write must be a row in the live database once.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { FlipRun, edgeAdmin, flipFigures, flipUnderLoad, recordedWrites } from "../../lab/flip";

const skip = labSkip(["haproxy", "socat", "python3", "tincd", "pg_ctlcluster"]);

const URL = "http://192.0.2.10/";
const DB = { old: "old-db-1", new: "new-db-1" } as const;
const pg = (phase: string) => ({ "cutover:database": JSON.stringify({ engine: "postgres", phase }) });

async function sql(lab: Lab, host: string, query: string): Promise<string> {
    const r = await lab.enter(host, `runuser -u postgres -- psql -X -q -At -c "${query}"`);
    assert.equal(r.code, 0, `${host}: ${query}: ${r.stderr}`);
    return r.stdout.trim();
}

function flip(lab: Lab, client: string, live: "old" | "new", runbook: Record<string, unknown> = {}): Promise<FlipRun> {
    return flipUnderLoad(lab, { url: URL, client, rate: 50, seconds: 10, leadMs: 1500, config: { ...pg("replica"), "cutover:live": live, "cutover:runbook": JSON.stringify(runbook) } });
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
        await provision(lab, LAB_STACKS.old, { config: pg("primary") });
        await provision(lab, LAB_STACKS.new, { config: { ...pg("replica"), "cutover:runbook": "{}" } });
        await provision(lab, LAB_STACKS.old, { config: pg("primary") });
        await provision(lab, LAB_STACKS.new, { config: { ...pg("replica"), "cutover:runbook": "{}" } });
    });
    after(async () => {
        await Lab.down();
    });

    it("serves the old site; the new server is a standby streaming from the old one", async () => {
        assert.equal(await edgeAdmin(lab, "old-edge-1", "cutover live"), "live old hold off");
        assert.equal(await sql(lab, DB.new, "SELECT pg_is_in_recovery()"), "t");
        assert.equal(await sql(lab, DB.new, "SELECT status FROM pg_stat_wal_receiver"), "streaming");
    });

    it("cutover old -> new under load: none failed, none lost, none twice; the old server follows the new one", async () => {
        const run = await flip(lab, "pgcut", "new");
        assert.equal(run.error, undefined, run.error);
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
        await provision(lab, LAB_STACKS.old, { config: pg("primary") });
        const runs = [...(await provision(lab, LAB_STACKS.old, { config: pg("primary") })).runs, ...(await provision(lab, LAB_STACKS.new, { config: { ...pg("replica"), "cutover:live": "new", "cutover:runbook": "{}" } })).runs];
        assert.deepEqual(runs.filter((r) => r.action !== "unchanged").map((r) => `${r.host} ${r.step}`), []);
        assert.equal(await sql(lab, DB.old, "SELECT pg_is_in_recovery()"), "t", "the old site's ensure-step promoted its server again");
    });

    it("flipping back is the rollback: nothing lost, none failed, writes end on the old site", async () => {
        const run = await flip(lab, "pgback", "old");
        assert.equal(run.error, undefined, run.error);
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
        // Flipping back (as the error says) rebuilds the aborted server as a standby (its data kept aside).
        const again = await provision(lab, LAB_STACKS.new, { config: { ...pg("replica"), "cutover:live": "old", "cutover:runbook": JSON.stringify({ attempt: 3 }) } });
        assert.ok(again.runs.some((r) => r.step === "new-runbook-resume" && r.action !== "unchanged"));
        assert.equal(await sql(lab, DB.new, "SELECT status FROM pg_stat_wal_receiver"), "streaming");
        assert.match((await lab.enter(DB.new, "ls -d /var/lib/postgresql/*/main.cutover-aborted-*")).stdout, /main\.cutover-aborted-\d+/);
    });
});
