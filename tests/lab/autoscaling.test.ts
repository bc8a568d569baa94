// The lab as a cloud, Adido's new site: an auto-scaled app tier on AWS. The group's instances
// boot through Debian's cloud-init from the launch template's user data, log in as admin with
// sudo, and a changed template rolls them (the instance refresh) one at a time, the tier
// answering throughout. The load balancer in front of the group is not in the lab (lab/cloud.ts).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { LAB_DIR, Lab, runArgv } from "../../lab/lab";
import { sshArgv } from "../../lab/ssh";
import { instanceVersion } from "../../lab/cloud";
import { labSkip } from "./requirements";
import { Provisioned, provision } from "../../lab/runtime";
import { AUTOSCALED_HOSTS, LAB_AUTOSCALED_STACK, LAB_PREFIX, autoscaledLabStackConfig, labPlan } from "../../lab/topology";
import { stackDir } from "../helpers";

const skip = labSkip(["cloud-init", "sshd", "ufw"]);
const INSTANCES = AUTOSCALED_HOSTS.map((h) => h.name);

interface Instance {
    /** Its SSH host key: a new instance makes a new one at its first boot. */
    hostKey: string;
    cloudInit: string;
    hostname: string;
    ufw: string;
    /** The template version the lab launched it from. */
    version: string;
}

describe("an auto-scaled app tier on the lab as a cloud (AWS)", { skip, timeout: 900_000 }, () => {
    let lab: Lab;
    let operatorKey: string;
    let first: Record<string, Instance>;

    const up = (keys: string[]): Promise<Provisioned> =>
        provision(lab, LAB_AUTOSCALED_STACK, { stackDir: stackDir({ [LAB_AUTOSCALED_STACK]: autoscaledLabStackConfig(lab.plan, keys) }) });

    /** Each instance as it is now, read on the host itself (one line each, empty when a command fails). */
    async function instances(): Promise<Record<string, Instance>> {
        const out: Record<string, Instance> = {};
        for (const name of INSTANCES) {
            const r = await lab.enter(name, `printf '%s\\n' "$(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub)" "$(cloud-init status | sed 's/^status: //')" "$(hostname)" "$(ufw status | head -n 1)"`);
            const [hostKey = "", cloudInit = "", hostname = "", ufw = ""] = r.stdout.split("\n");
            out[name] = { hostKey, cloudInit, hostname, ufw, version: instanceVersion({ dir: LAB_DIR, slots: {} }, name) };
        }
        return out;
    }

    const asUser = (name: string, user: string, command: string) =>
        runArgv([...sshArgv(lab.plan.admin.netns, { host: lab.host(name).address, user, keyPath: lab.keyPath }), command], { timeoutMs: 30_000 });

    before(async () => {
        lab = new Lab(labPlan(AUTOSCALED_HOSTS));
        await lab.up();
        operatorKey = fs.readFileSync(`${lab.keyPath}.pub`, "utf8").trim();
        await up([operatorKey]);
        // The group's update returns while its instances boot, as EC2's does.
        for (const name of INSTANCES) {
            const done = await lab.enter(name, "cloud-init status --wait >/dev/null; cloud-init status", 240_000);
            assert.match(done.stdout, /status: done/, `${name}: ${done.stdout} ${done.stderr}`);
        }
        first = await instances();
    });
    after(async () => {
        await Lab.down();
    });

    it("launches the group's desired capacity from the launch template's user data: first boot done, its name, the first-boot firewall on", () => {
        for (const name of INSTANCES) {
            const i = first[name];
            assert.equal(i.cloudInit, "done", name);
            assert.equal(i.hostname, "new-app", `${name}: the template names every instance of the tier alike`);
            assert.equal(i.ufw, "Status: active", name);
            assert.equal(i.version, "1", name);
            assert.match(i.hostKey, /^AAAA/, name);
        }
        assert.notEqual(first[INSTANCES[0]].hostKey, first[INSTANCES[1]].hostKey);
    });

    it("the operator logs in as admin with passwordless sudo, never as root; the internet reaches no SSH port", async () => {
        for (const name of INSTANCES) {
            const admin = await asUser(name, "admin", "id -un; sudo -n id -u");
            assert.equal(admin.code, 0, `${name}: ${admin.stderr}`);
            assert.deepEqual(admin.stdout.trim().split("\n"), ["admin", "0"], name);
            const root = await asUser(name, "root", "id -u");
            assert.notEqual(root.stdout.trim(), "0", `${name}: root logged in`);
            assert.match(root.stdout + root.stderr, /Please login as the user "admin"/, name);
            const fromInternet = await lab.client(`nc -z -w 3 ${lab.host(name).address} 22 && echo open || echo closed`);
            assert.equal(fromInternet.stdout.trim(), "closed", `${name}: SSH open to the internet`);
        }
    });

    it("a second pulumi up with nothing changed replaces no instance", async () => {
        await up([operatorKey]);
        assert.deepEqual(await instances(), first);
    });

    it("a changed launch template rolls the instances one at a time (an instance refresh), the tier answering SSH throughout", async (t) => {
        const extra = path.join(LAB_DIR, "second-operator-key");
        fs.rmSync(extra, { force: true });
        fs.rmSync(`${extra}.pub`, { force: true });
        const made = await runArgv(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "second-operator", "-f", extra], { timeoutMs: 30_000 });
        assert.equal(made.code, 0, made.stderr);
        const second = fs.readFileSync(`${extra}.pub`, "utf8").trim();
        // How many instances take an SSH connection, every 200 ms, while the refresh runs.
        const stop = `/tmp/${LAB_PREFIX}-asg-poll.stop`;
        await lab.operator(`rm -f ${stop}`);
        const targets = INSTANCES.map((n) => lab.host(n).address).join(" ");
        const poll = lab.operator(`while [ ! -e ${stop} ]; do n=0; for a in ${targets}; do nc -z -w 2 $a 22 && n=$((n+1)); done; echo $n; sleep 0.2; done`, 900_000);
        try {
            await up([operatorKey, second]);
        } finally {
            await lab.operator(`touch ${stop}`);
        }
        const answering = (await poll).stdout.split("\n").filter(Boolean).map(Number);
        t.diagnostic(`instances answering SSH, every 200 ms: ${answering.join(" ")}`);
        const now = await instances();
        for (const name of INSTANCES) {
            assert.notEqual(now[name].hostKey, first[name].hostKey, `${name}: not replaced`);
            assert.equal(now[name].version, "2", name);
            assert.equal(now[name].cloudInit, "done", name);
            const keys = await lab.enter(name, "cat /home/admin/.ssh/authorized_keys");
            assert.ok(keys.stdout.includes(second), `${name}: the new instance lacks the template's new key`);
        }
        assert.ok(answering.length >= 5, `only ${answering.length} samples`);
        assert.ok(Math.min(...answering) >= 1, `no instance answered SSH in some sample: ${answering.join(" ")}`);
        assert.ok(answering.includes(1), `never one instance down: not one at a time, or not replaced (${answering.join(" ")})`);
        // The next run finds the group as it left it.
        await up([operatorKey, second]);
        assert.deepEqual(await instances(), now);
    });
});
