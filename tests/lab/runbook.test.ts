// The cutover runbook on the lab's real HAProxy, probe apps and MariaDB, run by the
// program exactly as `pulumi up` after a flip of cutover:live, with clients writing
// through the old site's edge the whole time. Every write is a row in the site database;
// afterwards each acknowledged write must be in the live database exactly once.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { LAB_DIR, Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { baselineLab } from "./baseline";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { FlipRun, Write, edgeAdmin, flipFigures, flipUnderLoad, recordedWrites, underLoad } from "../../lab/flip";
import { SWITCH_RUNS } from "../../components/runbook/detach";

const skip = labSkip(["haproxy", "socat", "python3", "tincd", "mariadbd"]);

const URL = "http://192.0.2.10/"; // the old site's edge: clients keep using it, it routes to the live site
const EDGES = ["old-edge-1", "new-edge-1"];
const DB = { old: "old-db-1", new: "new-db-1" } as const;
const PARITY = { parity: ["cutover_probe.writes"] };
const SLOW = { ...PARITY, freezeMs: 5500, catchupMs: 4000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql(lab: Lab, host: string, query: string): Promise<string> {
    const r = await lab.enter(host, `mariadb --batch --skip-column-names -e "${query}"`);
    assert.equal(r.code, 0, `${host}: ${query}: ${r.stderr}`);
    return r.stdout.trim();
}

/** Flips (or re-flips) the new stack's cutover:live under 50 writes/s. */
function flip(lab: Lab, client: string, live: "old" | "new", runbook: Record<string, unknown> = PARITY): Promise<FlipRun> {
    // The load runs until 3 s after the program finished (60 s at most), however long it takes here.
    return flipUnderLoad(lab, { url: URL, client, rate: 50, seconds: 60, leadMs: 1500, tailMs: 3000, config: { "cutover:live": live, "cutover:runbook": JSON.stringify(runbook) } });
}

async function figures(lab: Lab, run: FlipRun, client: string, liveDb: string) {
    return flipFigures(run.writes, await recordedWrites(lab, liveDb, client), run.from, run.to);
}

/** Where the last second of writes was served. */
function servedAtTheEnd(run: FlipRun): string[] {
    const end = Math.max(...run.writes.map((w) => w.sent));
    return [...new Set(run.writes.filter((w) => w.sent > end - 1000 && w.status === 200).map((w) => w.served))];
}

/** Until `host` is writable again (the freeze ended at its deadline), at most `ms`. */
async function writableWithin(lab: Lab, host: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if ((await sql(lab, host, "SELECT @@read_only")) === "0") return true;
        await sleep(200);
    }
    return false;
}

/**
 * Replication from `primary` to `replica` runs and both servers hold the same GTID position
 * (bounded wait); returns "" when so, else what was seen last.
 */
async function replicationHealthy(lab: Lab, replica: string, primary: string, ms = 30_000): Promise<string> {
    const deadline = Date.now() + ms;
    let seen = "";
    while (Date.now() < deadline) {
        const status = (await lab.enter(replica, "mariadb -e 'SHOW SLAVE STATUS\\G'")).stdout;
        const [p, r] = await Promise.all([sql(lab, primary, "SELECT @@gtid_current_pos"), sql(lab, replica, "SELECT @@gtid_current_pos")]);
        const running = /Slave_IO_Running: Yes/.test(status) && /Slave_SQL_Running: Yes/.test(status);
        if (running && p !== "" && p === r && status.includes(`Master_Host: ${MESH[primary]}`)) return "";
        seen = `${(status.match(/Master_Host: \S+|Slave_(IO|SQL)_Running: \w+|Last_(IO|SQL)_Error: .*/g) ?? ["not a replica"]).join("; ")}; ${primary} at ${p}, ${replica} at ${r}`;
        await sleep(250);
    }
    return seen;
}

const MESH: Record<string, string> = { "old-db-1": "198.18.1.110", "new-db-1": "198.18.2.110" };

/**
 * Processes in network namespace `netns` (this lab's: the other lane's lab runs the same
 * commands) whose command line starts with `argv0` and contains `text` (pids, root namespace).
 */
function processes(netns: string, argv0: string, text: string): number[] {
    const ns = fs.statSync(`/run/netns/${netns}`).ino;
    const pids: number[] = [];
    for (const d of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8");
            if (cmd.startsWith(`${argv0}\0`) && cmd.includes(text) && fs.statSync(`/proc/${d}/ns/net`).ino === ns) pids.push(Number(d));
        } catch {
            // gone meanwhile
        }
    }
    return pids;
}

/** Polls `ready` every 50 ms (at most `ms`); true once it held. */
async function when(ready: () => Promise<boolean>, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (await ready().catch(() => false)) return true;
        await sleep(50);
    }
    return false;
}

/** The next run's switch says it took over an earlier run whose session was lost (still running, or finished). */
const REPORTED = /an earlier run of this flip (committed while nobody followed it|is still running) \(its session was lost\)|the window of an earlier run of this flip is still running \(its session was lost\)/;

interface LostOperator {
    writes: Write[];
    /** The first run's error (the operator's session was lost), and the next run's. */
    first?: string;
    next?: string;
    interrupted: boolean;
    /** What the next run's switch step printed. */
    nextSwitch: string;
}

/**
 * A flip under 50 writes/s whose first `pulumi up` loses the operator (`interrupt`, racing
 * it), then the next `pulumi up` with the same config, under the same load.
 */
async function flipLosingTheOperator(lab: Lab, client: string, live: "old" | "new", runbook: Record<string, unknown>, interrupt: () => Promise<boolean>): Promise<LostOperator> {
    const config = { "cutover:live": live, "cutover:runbook": JSON.stringify(runbook) };
    const r: LostOperator = { writes: [], interrupted: false, nextSwitch: "" };
    r.writes = await underLoad(lab, { url: URL, client, rate: 50, seconds: 120, tailMs: 3000 }, async () => {
        await sleep(1500);
        const watcher = interrupt();
        try {
            await provision(lab, LAB_STACKS.new, { config });
        } catch (e) {
            r.first = (e as Error).message;
        }
        r.interrupted = await watcher;
        try {
            await provision(lab, LAB_STACKS.new, { config });
        } catch (e) {
            r.next = (e as Error).message;
        }
    });
    const state = JSON.parse(fs.readFileSync(path.join(LAB_DIR, `state-${LAB_STACKS.new}.json`), "utf8"));
    r.nextSwitch = state["command:remote:Command::new-runbook-switch"]?.stdout ?? "";
    return r;
}

/** What must hold after any fault: nothing lost or failed, one writable database, edges routed to it and idle, replication healthy. */
async function assertConverged(lab: Lab, client: string, writes: Write[], live: "old" | "new"): Promise<void> {
    const other = live === "new" ? "old" : "new";
    const f = flipFigures(writes, await recordedWrites(lab, DB[live], client), 0, Number.MAX_SAFE_INTEGER);
    assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
    assert.deepEqual([await sql(lab, DB[live], "SELECT @@read_only"), await sql(lab, DB[other], "SELECT @@read_only")], ["0", "1"], `only ${DB[live]} may be writable`);
    for (const e of EDGES) assert.equal(await edgeAdmin(lab, e, "cutover live"), `live ${live} hold off`, `${e} must route to ${live} and hold nothing`);
    assert.equal(await replicationHealthy(lab, DB[other], DB[live]), "", `${DB[other]} must replicate from ${DB[live]}`);
    const last = writes.filter((w) => w.status === 200).sort((a, b) => b.sent - a.sent)[0];
    assert.match(last?.served ?? "", new RegExp(`^${live} `), "the last writes were not served by the live site");
}

describe("the cutover runbook, triggered by cutover:live", { skip, timeout: 1_800_000 }, () => {
    let lab: Lab;
    before(async () => {
        lab = await baselineLab();
    });
    after(async () => {
        await Lab.down();
    });

    it("serves the old site after provisioning; the edge refuses a site it does not know", async () => {
        for (const e of EDGES) assert.equal(await edgeAdmin(lab, e, "cutover live"), "live old hold off");
        assert.match(await edgeAdmin(lab, "old-edge-1", "cutover live elsewhere"), /error: unknown site elsewhere/);
        assert.equal(await sql(lab, DB.new, "SELECT @@read_only"), "1");
    });

    it("a hold with no switch releases the writes to the old site at its deadline: none fails", async () => {
        // A hold of 2 s from 1.5 s into 6 s of load: writes arrive during it even on a busy machine.
        const writes = await underLoad(lab, { url: URL, client: "holdonly", rate: 50, seconds: 6 }, async () => {
            await sleep(1500);
            await edgeAdmin(lab, "old-edge-1", "cutover hold 2000");
        });
        const f = flipFigures(writes, await recordedWrites(lab, DB.old, "holdonly"), 0, Number.MAX_SAFE_INTEGER);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.ok(f.window.maxMs > 500, "no write was held");
    });

    it("a postponed cutover changes nothing: the flag file holds it, the timeout aborts before any freeze", async () => {
        await lab.enter(DB.new, "mkdir -p /etc/cutover && touch /etc/cutover/postpone");
        const run = await flip(lab, "postponed", "new", { ...PARITY, postponeMinutes: 0 });
        await lab.enter(DB.new, "rm -f /etc/cutover/postpone");
        assert.match(run.error ?? "", /precheck on new-db-1: still postponed after 0 min \(\/etc\/cutover\/postpone\); nothing was changed/);
        assert.deepEqual(run.steps.map((s) => s.step), ["new-runbook-precheck"]);
        const f = await figures(lab, run, "postponed", DB.old);
        assert.deepEqual({ failed: f.failed, lost: f.lost }, { failed: 0, lost: 0 });
        assert.equal(await sql(lab, DB.old, "SELECT @@read_only"), "0");
    });

    it("the replica is behind when the freeze starts: the runbook waits for it, then cuts over with nothing lost", async () => {
        // A replica that applies each event two seconds after its timestamp (MASTER_DELAY). The
        // timestamps are whole seconds, so a write is applied 1 to 2 s after it committed: the
        // catch-up, which starts a few hundred ms after the last write (hold, drain, freeze),
        // waits at least half a second, within its bound of 4 s. (With a delay of 1 s it could
        // wait nothing at all: a CI run waited 215 ms.)
        await sql(lab, DB.new, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=2; START SLAVE");
        const run = await flip(lab, "behind", "new", SLOW);
        assert.equal(run.error, undefined);
        assert.deepEqual(run.steps.map((s) => s.step), ["new-runbook-precheck", "new-runbook-switch", "new-runbook-resume"]);
        const waited = Number(run.audit?.catchupWaitedMs);
        assert.ok(waited >= 500, `catch-up should have waited for the delayed replica (${waited} ms)`);
        assert.equal(run.audit?.lostTransactions, 0);
        const f = await figures(lab, run, "behind", DB.new);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.deepEqual(f.servedAfter, ["new new-app-1"]);
        // Roles swapped: new writable and not replicating; old read-only, replicating from new.
        assert.equal(await sql(lab, DB.new, "SELECT @@read_only"), "0");
        assert.equal((await sql(lab, DB.new, "SHOW SLAVE STATUS")), "");
        assert.equal(await sql(lab, DB.old, "SELECT @@read_only"), "1");
        assert.match(await lab.enter(DB.old, "mariadb -e 'SHOW SLAVE STATUS\\G'").then((r) => r.stdout), /Master_Host: 198\.18\.2\.110[\s\S]*Slave_IO_Running: Yes[\s\S]*Slave_SQL_Running: Yes/);
        for (const e of EDGES) assert.equal(await edgeAdmin(lab, e, "cutover live"), "live new hold off");
        const audit = (await lab.enter(DB.old, "tail -n 1 /var/log/cutover/audit.jsonl")).stdout;
        assert.deepEqual(JSON.parse(audit), run.audit, "the audit record on the outgoing host is the stack output's");
    });

    it("a second run with nothing changed runs no step", async () => {
        const again = await provision(lab, LAB_STACKS.new, { config: { "cutover:live": "new", "cutover:runbook": JSON.stringify(SLOW) } });
        assert.deepEqual(again.runs.filter((r) => r.action !== "unchanged").map((r) => r.step), []);
    });

    it("flipping back is the rollback: nothing lost, none failed, writes end on the old site", async () => {
        const run = await flip(lab, "rollback", "old");
        assert.equal(run.error, undefined);
        const f = await figures(lab, run, "rollback", DB.old);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.deepEqual(f.servedAfter, ["old old-app-1"]);
        assert.equal(await sql(lab, DB.old, "SELECT @@read_only"), "0");
        assert.equal(await sql(lab, DB.new, "SELECT @@read_only"), "1");
        // Every row of every client so far, on both databases.
        assert.equal(await sql(lab, DB.new, "SELECT COUNT(*) FROM cutover_probe.writes"), await sql(lab, DB.old, "SELECT COUNT(*) FROM cutover_probe.writes"));
    });

    it("validation fails after promotion: the incoming database is demoted again, the old site unfreezes and serves, nothing lost", async () => {
        const run = await flip(lab, "badvalidate", "new", { ...PARITY, validate: "echo smoke test failed >&2; false" });
        assert.match(run.error ?? "", /switch on new-db-1: validation failed: cutover:runbook.validate exited non-zero: smoke test failed *; aborted: old stays live and writable, new-db-1 replicates from old-db-1 again/);
        assert.ok(await writableWithin(lab, DB.old, 5000), "old-db-1 stayed read-only");
        const f = await figures(lab, run, "badvalidate", DB.old);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.deepEqual(servedAtTheEnd(run), ["old old-app-1"]);
        assert.match(await lab.enter(DB.new, "mariadb -e 'SHOW SLAVE STATUS\\G'").then((r) => r.stdout), /Master_Host: 198\.18\.1\.110[\s\S]*Slave_SQL_Running: Yes/);
        assert.equal(await sql(lab, DB.new, "SELECT @@read_only"), "1");
        assert.equal(await replicationHealthy(lab, DB.new, DB.old), "");
    });

    it("the link between the sites is cut during catch-up: abort after the timeout, the old site unfreezes and serves, nothing lost", async () => {
        await sql(lab, DB.new, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=2; START SLAVE");
        // Cut as soon as the old database is frozen (the catch-up is then waiting for the delayed replica).
        const cutter = (async () => {
            for (let i = 0; i < 300; i++) {
                // A poll that stalls (this machine's pyenv lock, seen in the lab) just polls again.
                const r = await lab.enter(DB.old, 'mariadb --batch --skip-column-names -e "SELECT @@read_only"', 3000);
                if (r.stdout.trim() === "1") {
                    lab.cut("old", "new");
                    return true;
                }
                await sleep(50);
            }
            return false;
        })();
        const run = await flip(lab, "linkcut", "new", { ...PARITY, attempt: 2 });
        assert.ok(await cutter, "the freeze was never seen");
        assert.match(run.error ?? "", /switch on new-db-1: .*aborted: old stays live and writable/);
        assert.ok(await writableWithin(lab, DB.old, 5000), "old-db-1 stayed read-only");
        await lab.restore("old", "new");
        const f = await figures(lab, run, "linkcut", DB.old);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.deepEqual(servedAtTheEnd(run), ["old old-app-1"]);
        assert.equal(await sql(lab, DB.new, "SELECT @@read_only"), "1", "new-db-1 was promoted");
        for (const e of EDGES) assert.match(await edgeAdmin(lab, e, "cutover live"), /^live old/);
        // The freeze ended at its deadline by its event: the replica must have kept applying.
        // Reconnect it once the mesh carries traffic again (its own retry waits a minute).
        assert.ok(await when(async () => (await lab.enter(DB.new, `ping -c 1 -W 1 ${MESH[DB.old]}`)).code === 0, 60_000), "the mesh did not come back");
        await sql(lab, DB.new, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE");
        assert.equal(await replicationHealthy(lab, DB.new, DB.old), "");
    });

    it("an aborted switch is never re-run blindly: a retry with the same attempt waits while postponed, then completes", async () => {
        // The smoke test fails on what it finds on the host, not on the flip's settings: the retry
        // is the same flip (a changed setting would run the precheck again, the digest in every step).
        const settings = { ...PARITY, attempt: 3, validate: "if [ -e /etc/cutover/smoke-broken ]; then echo smoke test failed >&2; false; fi" };
        await lab.enter(DB.new, "mkdir -p /etc/cutover && touch /etc/cutover/smoke-broken");
        const failing = await flip(lab, "retryabort", "new", settings);
        assert.match(failing.error ?? "", /switch on new-db-1: validation failed/);
        assert.ok(await writableWithin(lab, DB.old, 5000), "old-db-1 stayed read-only after the abort");
        // The host is fixed, and the operator postpones: the precheck is unchanged (skipped); the switch must wait.
        await lab.enter(DB.new, "rm -f /etc/cutover/smoke-broken && touch /etc/cutover/postpone");
        let heldWhilePostponed: string[] = [];
        const watcher = (async () => {
            const waiting = await when(async () => processes(lab.host(DB.new).netns, "bash", "cutover runbook: switch on new-db-1").length > 0, 60_000);
            for (let i = 0; i < 8; i++) {
                await sleep(500);
                const frozen = await sql(lab, DB.old, "SELECT @@read_only");
                const edges = await Promise.all(EDGES.map((e) => edgeAdmin(lab, e, "cutover live")));
                if (frozen !== "0" || edges.some((a) => a !== "live old hold off")) heldWhilePostponed.push(`read_only=${frozen} ${edges.join(", ")}`);
            }
            await lab.enter(DB.new, "rm -f /etc/cutover/postpone");
            return waiting;
        })();
        const run = await flip(lab, "retry", "new", settings);
        assert.ok(await watcher, "the retried switch never ran");
        assert.deepEqual(heldWhilePostponed, [], "something was frozen or held while the postpone file existed");
        assert.equal(run.error, undefined);
        assert.deepEqual(run.steps.map((x) => x.step), ["new-runbook-switch", "new-runbook-resume"], "the precheck is skipped as unchanged; the switch re-checks");
        await assertConverged(lab, "retry", run.writes, "new");
    });

    it("the operator's SSH client is killed right after the freeze began: the window finishes on the host, the next run reports it", async () => {
        const r = await flipLosingTheOperator(lab, "lostfrozen", "old", { ...PARITY, attempt: 3 }, async () => {
            // The outgoing database (new) is frozen: the window is between t1 and t4.
            const frozen = await when(async () => (await sql(lab, DB.new, "SELECT @@read_only")) === "1", 60_000);
            for (const pid of processes(lab.plan.admin.netns, "ssh", "cutover runbook: switch on old-db-1")) process.kill(pid, "SIGKILL");
            return frozen;
        });
        assert.ok(r.interrupted, "the freeze was never seen");
        assert.match(r.first ?? "", /step new-runbook-switch on host old-db-1 failed during update: the SSH session was ended by SIGKILL before the step finished/);
        assert.equal(r.next, undefined, "the next run did not finish the flip");
        assert.match(r.nextSwitch, REPORTED);
        assert.match(r.nextSwitch, /switch t5 routed/);
        await assertConverged(lab, "lostfrozen", r.writes, "old");
    });

    it("the operator's SSH client is killed right after promotion: the window commits on the host, never two writable databases", async () => {
        const r = await flipLosingTheOperator(lab, "lostpromoted", "new", { ...PARITY, attempt: 4, validate: "sleep 1" }, async () => {
            const promoted = await when(async () => (await sql(lab, DB.new, "SELECT @@read_only")) === "0", 60_000);
            for (const pid of processes(lab.plan.admin.netns, "ssh", "cutover runbook: switch on new-db-1")) process.kill(pid, "SIGKILL");
            // Never both writable, from the kill to the window's end.
            for (let i = 0; i < 20; i++) {
                const both = [await sql(lab, DB.old, "SELECT @@read_only"), await sql(lab, DB.new, "SELECT @@read_only")];
                assert.notDeepEqual(both, ["0", "0"], "both databases writable");
                await sleep(100);
            }
            return promoted;
        });
        assert.ok(r.interrupted, "the promotion was never seen");
        assert.match(r.first ?? "", /the SSH session was ended by SIGKILL/);
        assert.equal(r.next, undefined, "the next run did not finish the flip");
        assert.match(r.nextSwitch, REPORTED);
        assert.match(r.nextSwitch, /switch t4 committed/);
        await assertConverged(lab, "lostpromoted", r.writes, "new");
    });

    it("a hangup of the switch's shells on the host: the window ignores it and finishes, the next run reports it", async () => {
        const run = `${SWITCH_RUNS}/new-old-4`;
        const r = await flipLosingTheOperator(lab, "hangup", "old", { ...PARITY, attempt: 4 }, async () => {
            const frozen = await when(async () => (await sql(lab, DB.new, "SELECT @@read_only")) === "1", 60_000);
            const hup = await lab.enter(DB.old, `kill -HUP "$(cat ${run}/pid)"; pkill -HUP -f "cutover runbook: [s]witch on old-db-1"; true`);
            assert.equal(hup.code, 0, hup.stderr);
            return frozen;
        });
        assert.ok(r.interrupted, "the freeze was never seen");
        assert.match(r.first ?? "", /step new-runbook-switch on host old-db-1 failed during update: exit code 129/);
        assert.equal(r.next, undefined, "the next run did not finish the flip");
        assert.match(r.nextSwitch, REPORTED);
        assert.match(r.nextSwitch, /switch t5 routed/);
        await assertConverged(lab, "hangup", r.writes, "old");
    });
});
