// The lab as a cloud: the reference stacks' shape (old on DigitalOcean, new on AWS), every
// host created by the program and booted by Debian's real cloud-init from the program's own
// user data, as its cloud's login user (root on DigitalOcean, admin with sudo on AWS). The
// program's first steps meet hosts still in their first boot. The cutover and the rollback
// of these stacks under load, both strategies, are the rehearsal's "clouds" part
// (tests/lab/rehearse.test.ts).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { LAB_DIR, Lab, runArgv } from "../../lab/lab";
import { labSkip } from "./requirements";
import { provision } from "../../lab/runtime";
import { CLOUD_HOSTS, LAB_CLOUD_STACKS, labPlan } from "../../lab/topology";
import { readRuns } from "../../lab/executor";
import { sshArgv } from "../../lab/ssh";

const skip = labSkip(["haproxy", "socat", "python3", "tincd", "mariadbd", "cloud-init", "sudo", "losetup"]);

const HOSTS = CLOUD_HOSTS.map((h) => h.name);

describe("the lab as a cloud: DigitalOcean to AWS", { skip, timeout: 1_800_000 }, () => {
    let lab: Lab;
    before(async () => {
        lab = new Lab(labPlan(CLOUD_HOSTS), (l) => console.log(l));
        await lab.up();
        for (const s of [LAB_CLOUD_STACKS.old, LAB_CLOUD_STACKS.new, LAB_CLOUD_STACKS.old, LAB_CLOUD_STACKS.new]) await provision(lab, s);
    });
    after(async () => {
        await Lab.down();
    });

    it("every host the program created booted through cloud-init, named by the program, and the program waited for its first boot", async () => {
        const runs = readRuns(LAB_DIR);
        for (const host of HOSTS) {
            const status = await lab.enter(host, "cloud-init status --long; hostname; stat -c %Y.%y /var/lib/cloud/instance/boot-finished");
            assert.equal(status.code, 0, `${host}: ${status.stdout} ${status.stderr}`);
            assert.match(status.stdout, /^status: done$/m, `${host}: ${status.stdout}`);
            assert.match(status.stdout, new RegExp(`^${host}$`, "m"), `${host}: the user data's hostname`);
            // The first-boot firewall ran (cloud-init's runcmd), and the program's firewall step after it.
            const ufw = await lab.enter(host, "ufw status | head -n 1; grep -c CUTOVER_FIRST_BOOT /var/lib/cloud/instance/scripts/runcmd");
            assert.match(ufw.stdout, /^Status: active$/m, host);
            assert.match(ufw.stdout, /^1$/m, `${host}: cloud-init's runcmd runs the firewall as the first boot's (it must not wait for itself)`);
            const finished = Number(/^(\d+)\./m.exec(status.stdout)?.[1]) * 1000;
            const first = runs.find((r) => r.host === host && r.action !== "unchanged");
            assert.ok(first, `no step ran on ${host}`);
            const started = (first.endedAt ?? 0) - first.ms;
            console.log(`   ${host}: first step ${first.step} started ${started < finished ? `${((finished - started) / 1000).toFixed(1)} s before cloud-init finished (it waited)` : "after cloud-init finished"}`);
            assert.ok((first.endedAt ?? 0) >= finished, `${host}: ${first.step} ended before the first boot finished`);
        }
    });

    it("logs in as each cloud's user: root on the droplets; admin with sudo on the instances, whose root login is refused", async () => {
        const state = (stack: string) => Object.values(JSON.parse(fs.readFileSync(path.join(LAB_DIR, `state-${stack}.json`), "utf8")) as Record<string, { target: { host: string; user: string; keyPath: string } }>);
        // Both stacks' steps (the new stack's runbook also logs in to the old site's db host).
        const steps = [...state(LAB_CLOUD_STACKS.old), ...state(LAB_CLOUD_STACKS.new)];
        const users = (prefix: string) => [...new Set(steps.filter((s) => s.target.host.startsWith(prefix)).map((s) => s.target.user))];
        assert.deepEqual(users("192.0.2."), ["root"], "DigitalOcean droplets");
        assert.deepEqual(users("198.51.100."), ["admin"], "AWS instances");
        const target = steps.find((s) => s.target.host === "198.51.100.10")!.target;
        const asRoot = await runArgv([...sshArgv(lab.plan.admin.netns, { host: target.host, user: "root", keyPath: target.keyPath }), "id -u"], { timeoutMs: 30_000 });
        assert.notEqual(asRoot.stdout.trim(), "0", "root may log in to an AWS instance");
        assert.match(asRoot.stdout + asRoot.stderr, /Please login as the user "admin"/);
        const sudo = await lab.enter("new-db-1", "sudo -l -U admin");
        assert.match(sudo.stdout, /NOPASSWD: ALL/);
        // The peer's runbook logs in as the login user: its key goes to admin's keys, not root's (the step runs through sudo).
        const keys = await lab.enter("new-db-1", "grep -c ' cutover-peer-runbook:old$' /home/admin/.ssh/authorized_keys; stat -c %U /home/admin/.ssh/authorized_keys; grep -c cutover-peer-runbook /root/.ssh/authorized_keys || true");
        assert.deepEqual(keys.stdout.trim().split("\n"), ["1", "admin", "0"], keys.stdout + keys.stderr);
    });

    it("the DigitalOcean db droplet keeps its database on its volume; a re-run with unchanged config runs no step", async () => {
        const mount = await lab.enter("old-db-1", "findmnt -rno SOURCE /var/lib/mysql; ls /var/lib/mysql/mysql >/dev/null && echo tables");
        assert.match(mount.stdout, /^\/dev\/loop\d+$/m, mount.stdout + mount.stderr);
        assert.match(mount.stdout, /^tables$/m);
        const before = readRuns(LAB_DIR).length;
        for (const s of [LAB_CLOUD_STACKS.old, LAB_CLOUD_STACKS.new]) await provision(lab, s);
        const ran = readRuns(LAB_DIR).slice(before).filter((r) => r.action !== "unchanged");
        assert.deepEqual(ran.map((r) => `${r.host} ${r.step}`), []);
    });
});
