// `npm run rehearse` end to end, as an engineer runs it: both sites provisioned, checked,
// and cut over and back under load with both strategies on MariaDB (Ghost(Pro)'s
// dual-primary among them), Redis beside MariaDB (the reference stacks) and beside PostgreSQL
// (OneSignal's t0..t5). The report must show:
// nothing lost anywhere (Redis included), no failed write, the writes after each flip
// served by the incoming site, and for MariaDB freeze-and-promote held writes released by
// the switch, before the freeze deadline. Then the reference stacks' migration, DigitalOcean
// to AWS, on the lab as a cloud: every host created by the program and booted by Debian's real
// cloud-init from the program's own user data, as its cloud's login user (root on
// DigitalOcean, admin with sudo on AWS), the program's first steps meeting hosts mid-boot.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runArgv } from "../../lab/lab";
import { labSkip } from "./requirements";
import type { CloudBoot, CloudLogins } from "../../lab/cloud-checks";
import { CLOUD_HOSTS } from "../../lab/topology";

const skip = labSkip(["haproxy", "socat", "python3", "tincd", "mariadbd", "pg_ctlcluster", "cloud-init", "sudo", "losetup"]);
const ROOT = path.resolve(__dirname, "../..");

interface Flip {
    writes: number;
    failed: number;
    lost: number;
    duplicated: number;
    unavailableMs: number;
    window: { maxMs: number };
    servedAfter: string[];
    heldServedBy: string[];
    error?: string;
    audit?: Record<string, string | number>;
    redis?: { writes: number; failed: number; lost: number };
}

describe("npm run rehearse", { skip, timeout: 2_400_000 }, () => {
    it("cuts over and back with both strategies and on PostgreSQL: no write lost, failed or doubled; held writes are released by the switch, not by the freeze deadline", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-rehearse-"));
        const report = path.join(dir, "report.json");
        const r = await runArgv([process.execPath, "--import", "tsx", path.join(ROOT, "tools/rehearse.ts"), "--report", report], { timeoutMs: 2_300_000, env: { ...process.env } });
        // CUTOVER_REHEARSAL_REPORT: where to keep the report (CI's figures), passed or not.
        if (process.env.CUTOVER_REHEARSAL_REPORT && fs.existsSync(report)) fs.copyFileSync(report, process.env.CUTOVER_REHEARSAL_REPORT);
        // A failed flip's whole message (host, step, exit code, stderr) first: CI shows only the end of a run.
        const failedSteps = r.stdout.split("\n").filter((l) => l.startsWith("   | ")).join("\n");
        assert.equal(r.code, 0, `${failedSteps}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
        const rep = JSON.parse(fs.readFileSync(report, "utf8"));
        assert.equal(rep.ok, true);
        assert.ok(fs.statSync(path.join(dir, "rehearsal-timeline.svg")).size > 1000);
        for (const strategy of ["freeze", "dual-primary", "postgres"]) {
            for (const [name, site] of [["cutover", "new"], ["rollback", "old"]]) {
                const f: Flip = rep.cutover[strategy][name];
                const what = `${strategy} ${name}`;
                assert.equal(f.error, undefined, what);
                assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated, unavailableMs: f.unavailableMs }, { failed: 0, lost: 0, duplicated: 0, unavailableMs: 0 }, what);
                assert.ok(f.writes >= 300, `${what}: only ${f.writes} writes`);
                assert.deepEqual(f.servedAfter, [`${site} ${site}-app-1`], what);
                assert.equal(f.audit?.lostTransactions, 0, what);
                // Released by the switch to the incoming site, not by an edge's own deadline (which
                // sends them to the outgoing one): the window's length is a figure of the report.
                if (strategy !== "dual-primary") assert.deepEqual(f.heldServedBy, [`${site} ${site}-app-1`], `${what}: writes held in the window`);
                if (strategy === "postgres") assert.equal(f.audit?.engine, "postgres", what);
                if (strategy !== "dual-primary") {
                    // Redis beside the database (the reference stacks, OneSignal's): switched in the same
                    // window; a job writer on the outgoing Redis loses nothing.
                    assert.equal(f.redis?.lost, 0, `${what}: Redis`);
                    assert.ok((f.redis?.writes ?? 0) - (f.redis?.failed ?? 0) >= 100, `${what}: only ${(f.redis?.writes ?? 0) - (f.redis?.failed ?? 0)} Redis writes acknowledged`);
                }
            }
        }
        // DigitalOcean to AWS on the lab as a cloud: every created host booted through cloud-init
        // from the program's user data, as its cloud's login user; both strategies both ways.
        const clouds = rep.clouds;
        assert.equal(clouds?.ok, true, JSON.stringify({ boot: clouds?.boot, logins: clouds?.logins, volume: clouds?.volume, rerun: clouds?.rerun }));
        const boot = clouds.boot as Record<string, CloudBoot>;
        assert.deepEqual(Object.keys(boot).sort(), CLOUD_HOSTS.map((h) => h.name).sort());
        for (const [host, b] of Object.entries(boot)) {
            // The user data's hostname; cloud-init's runcmd ran the first-boot firewall once (it must not wait
            // for itself); the program's first step ended after the first boot finished (it waited).
            assert.deepEqual({ cloudInit: b.cloudInit, hostname: b.hostname, ufwActive: b.ufwActive, firstBootFirewall: b.firstBootFirewall, firstStepWaited: b.firstStepWaited }, { cloudInit: "done", hostname: host, ufwActive: true, firstBootFirewall: true, firstStepWaited: true }, host);
        }
        // Root on the droplets; admin with sudo on the instances, whose root login is refused. The peer's
        // runbook logs in as the login user: its key goes to admin's keys, not root's (the step runs through sudo).
        const logins = clouds.logins as CloudLogins;
        assert.deepEqual(logins.users, { digitalocean: ["root"], aws: ["admin"] });
        assert.equal(logins.awsRootRefused, true, "root may log in to an AWS instance");
        assert.equal(logins.awsAdminSudo, true);
        assert.deepEqual(logins.peerRunbookKey, { admin: 1, root: 0, owner: "admin" });
        // The DigitalOcean db droplet keeps its database on its volume (a loop device in the lab).
        assert.match(clouds.volume.source, /^\/dev\/loop\d+$/);
        assert.equal(clouds.volume.tables, true);
        assert.equal(clouds.rerun.ran, 0);
        for (const strategy of ["freeze", "dual-primary"]) {
            for (const [name, site] of [["cutover", "new"], ["rollback", "old"]]) {
                const f: Flip = clouds.cutover[strategy][name];
                const what = `DigitalOcean to AWS, ${strategy} ${name}`;
                assert.equal(f.error, undefined, what);
                assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 }, what);
                assert.ok(f.writes >= 300, `${what}: only ${f.writes} writes`);
                assert.deepEqual(f.servedAfter, [`${site} ${site}-app-1`], what);
                if (strategy === "freeze") assert.deepEqual(f.heldServedBy, [`${site} ${site}-app-1`], `${what}: writes held in the window`);
            }
        }
        fs.rmSync(dir, { recursive: true, force: true });
    });
});
