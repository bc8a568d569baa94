// The lab with real daemons: namespaced hosts, the program's remote commands run over SSH,
// UFW enforcing what was rendered. Needs root and the lab's Debian packages
// (lab/install-packages.sh); without them these tests skip, unless CUTOVER_LAB_REQUIRED=1
// (CI), where a missing prerequisite is a failure.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import { labHostRules, probeFirewalls } from "../../lab/firewall-check";
import { LAB_DIR, Lab, LabError, labNamespaces } from "../../lab/lab";
import { labSkip } from "./requirements";
import { handOn, testPassed } from "./baseline";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { ADMIN_CIDR, LAB_PREFIX, LAB_SLOT, LabHost } from "../../lab/topology";
import { referenceConfig, stackDir } from "../helpers";
import { HostInventory } from "../../components/inventory";
import { unwrapSecrets } from "../../tools/offline";

const skip = labSkip(["ufw", "nc", "sshd"]);

function rulesFor(lab: Lab, h: LabHost) {
    return labHostRules(lab.plan, h);
}

/** A process a test starts inside a lab host, told apart from another lab's (CUTOVER_LAB_SLOT). */
const MARK = `sleep ${600 + Number(LAB_SLOT || 0)}`;

/** Processes of this lab's hosts (their init script, or the test's mark started inside one). */
function labProcesses(): string[] {
    const found: string[] = [];
    for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
        if (Number(pid) === process.pid) continue;
        try {
            const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
            if (cmd.includes(`${LAB_DIR}/host-init.sh`) || cmd.startsWith(`${MARK} `)) found.push(`${pid} ${cmd}`);
        } catch {
            // the process ended while we looked
        }
    }
    return found;
}

/** Everything the lab could leave behind on the machine. */
function traces() {
    const sh = (c: string) => spawnSync("bash", ["-c", c], { encoding: "utf8" }).stdout.trim();
    return {
        namespaces: labNamespaces(),
        veths: sh("ip -o link show type veth | grep -c ' lv[0-9]' || true"),
        mounts: sh(`grep -cE '${LAB_PREFIX}[-/]' /proc/mounts || true`),
        processes: String(labProcesses().length),
        files: fs.existsSync(LAB_DIR),
    };
}

const CLEAN = { namespaces: [], veths: "0", mounts: "0", processes: "0", files: false };

describe("lab teardown", { skip, timeout: 120_000 }, () => {
    it("leaves no namespace, link, mount, process or file behind", async () => {
        const lab = new Lab();
        await lab.up();
        await lab.ssh("old-app-1", `setsid nohup ${MARK} </dev/null >/dev/null 2>&1 &`);
        assert.notDeepEqual(traces(), CLEAN);
        await Lab.down();
        assert.deepEqual(traces(), CLEAN);
    });

    it("also cleans up a lab whose runner died without tearing down", async () => {
        const script = `import { Lab } from ${JSON.stringify(require.resolve("../../lab/lab"))};\nnew Lab().up().then(() => process.kill(process.pid, "SIGKILL"));`;
        const crash = `${LAB_DIR}-crash.ts`;
        fs.writeFileSync(crash, script);
        spawnSync(process.execPath, ["--import", "tsx", crash], { encoding: "utf8", timeout: 60_000 });
        fs.rmSync(crash);
        assert.ok(labNamespaces().length > 0, "the crashed run left no lab to clean up");
        await Lab.down();
        assert.deepEqual(traces(), CLEAN);
    });
});

describe("the lab", { skip, timeout: 600_000 }, () => {
    let lab: Lab;
    let passed = true;
    before(async () => {
        lab = new Lab();
        await lab.up();
    });
    afterEach((t) => {
        passed &&= testPassed(t);
    });
    after(async () => {
        // Provisioned to the baseline below: the next file of the lane's chain may take it.
        await handOn(lab, passed);
    });

    it("gives every host its own hostname, PID 1, /etc and address, unreachable from the machine itself", async () => {
        const r = await lab.ssh("old-db-1", "hostname; ps -o pid= -p 1; touch /etc/only-on-old-db-1; ip -4 -o addr show eth0");
        assert.equal(r.code, 0, r.stderr);
        const [name, pid1, addr] = r.stdout.trim().split("\n");
        assert.equal(name, "old-db-1");
        assert.equal(pid1.trim(), "1");
        assert.match(addr, /192\.0\.2\.20\/24/);
        assert.ok(!fs.existsSync("/etc/only-on-old-db-1"), "a lab host wrote into the machine's /etc");
        assert.equal((await lab.ssh("new-db-1", "test -e /etc/only-on-old-db-1 && echo shared || echo private")).stdout.trim(), "private");
        assert.notEqual(spawnSync("ping", ["-c1", "-W1", "192.0.2.20"]).status, 0, "the machine's own namespace routes to a lab address");
        // The machine's own shell setup (pyenv) stays off the hosts: its shim lock once stalled SSH sessions.
        assert.equal((await lab.ssh("old-db-1", "echo ${PYENV_ROOT:-none}")).stdout.trim(), "none");
    });

    it("cuts and restores the link between the two sites, leaving each site's own traffic", async () => {
        const cross = () => lab.enter("new-app-1", "nc -z -w 1 192.0.2.20 22 && echo up || echo down").then((r) => r.stdout.trim());
        assert.equal(await cross(), "up");
        lab.cut("old", "new");
        try {
            assert.equal(await cross(), "down");
            assert.equal((await lab.enter("old-app-1", "nc -z -w 1 192.0.2.20 22 && echo up || echo down")).stdout.trim(), "up");
            assert.equal((await lab.ssh("old-db-1", "true")).code, 0, "the operator lost the old site");
        } finally {
            lab.restore("old", "new");
        }
        assert.equal(await cross(), "up");
    });

    describe("provisioned through the program", () => {
        // old, new, old, new: old learns new's mesh members on its second run, new's replica seeds on its second.
        let firstOld: Record<string, unknown>;
        before(async () => {
            // What an operator left on an existing host, for the inventory to find.
            await lab.enter("old-app-1", "echo '17 3 * * * root /usr/local/bin/backup --password=hunter2 >/dev/null' > /etc/cron.d/nightly-backup");
            await lab.enter("old-app-1", "setsid nohup socat TCP-LISTEN:7070,fork,reuseaddr EXEC:/bin/true </dev/null >/dev/null 2>&1 &");
            firstOld = unwrapSecrets((await provision(lab, LAB_STACKS.old)).evaluation.outputs) as Record<string, unknown>;
            await provision(lab, LAB_STACKS.new);
            await provision(lab, LAB_STACKS.old);
            await provision(lab, LAB_STACKS.new);
        });

        it("ufw on every host admits exactly the rendered rules, seen from the operator, a client and both sites", async () => {
            const targets = lab.plan.hosts.filter((h) => !h.spare).map((h) => ({ name: h.name, address: h.address, rules: rulesFor(lab, h) }));
            const probes = await probeFirewalls(lab, targets, [5432, 6379, 9999]);
            assert.ok(probes.length >= 300, `only ${probes.length} probes`);
            assert.deepEqual(probes.filter((p) => p.open !== p.expected), []);
            // The security model, stated independently of the renderer:
            const open = (from: string, to: string, port: number) => probes.find((p) => p.from === from && p.to === to && p.port === port)?.open;
            assert.equal(open("client", "old-db-1", 22), false, "SSH open to the internet");
            assert.equal(open("operator", "old-db-1", 22), true, "the operator cannot reach SSH");
            assert.equal(open("new-app-1", "old-db-1", 3306), false, "the database is open across sites");
            assert.equal(open("old-app-1", "old-db-1", 3306), true, "the app cannot reach its database");
            assert.equal(open("client", "old-edge-1", 443), true, "the edge does not serve the internet");
            assert.equal(open("client", "old-app-1", 8080), false, "an app host is public");
            assert.equal(open("client", "old-db-1", 655), false, "the mesh port is open to the internet");
            assert.equal(open("new-app-1", "old-db-1", 655), true, "a mesh member cannot reach another's tinc port");
            assert.equal(open("new-app-2", "old-db-1", 655), false, "a host outside the mesh reaches the tinc port");
        });

        it("the inventory output holds what each existing host ran before the program changed it", async () => {
            const inventory = firstOld.inventory as Record<string, { observed: HostInventory | null }>;
            const sh = async (host: string, cmd: string) => (await lab.enter(host, cmd)).stdout.trim();
            for (const h of lab.plan.hosts.filter((x) => x.site === "old" && !x.spare)) {
                const seen = inventory[h.name]?.observed;
                assert.ok(seen, `no inventory of ${h.name}`);
                assert.equal(seen.packages.length, Number(await sh(h.name, "dpkg-query -W -f '${db:Status-Status}\\n' | grep -c '^installed$'")), `${h.name}: package count`);
                const ssh = seen.packages.find((p) => p.name === "openssh-server");
                assert.equal(ssh?.version, await sh(h.name, "dpkg-query -W -f '${Version}' openssh-server"));
                assert.ok(seen.listening.some((l) => l.proto === "tcp" && l.port === 22 && l.process === "sshd"), `${h.name}: sshd not listed`);
                const root = seen.disks.find((d) => d.mount === "/");
                assert.equal(root?.sizeKb, Number(await sh(h.name, "df -P -k / | awk 'NR == 2 { print $2 }'")));
                // Collected before the firewall step: ufw is active now, it was not then.
                assert.notEqual(seen.firewall.tool, "ufw", `${h.name}: the inventory ran after the firewall step`);
                assert.match(await sh(h.name, "ufw status | head -1"), /Status: active/);
            }
            const app = inventory["old-app-1"].observed!;
            assert.ok(app.listening.some((l) => l.port === 7070 && l.process === "socat"), "the operator's listener is missing");
            const cron = app.cron.find((c) => c.source === "/etc/cron.d/nightly-backup");
            assert.equal(cron?.line, "17 3 * * * root /usr/local/bin/backup --password=[redacted] >/dev/null");
            assert.doesNotMatch(JSON.stringify(firstOld), /hunter2/);
            assert.ok(inventory["old-db-1"].observed!.data.some((d) => d.path === "/var/lib/mysql" && d.kb > 0), "the database folder's size is missing");
        });

        it("notices a host whose firewall is off (the check can fail)", async () => {
            const h = lab.host("new-db-1");
            await lab.enter(h.name, "ufw --force disable");
            try {
                const probes = await probeFirewalls(lab, [{ name: h.name, address: h.address, rules: rulesFor(lab, h) }], [9999]);
                assert.ok(probes.some((p) => p.open && !p.expected && p.from === "client"), "a disabled firewall went unnoticed");
            } finally {
                await lab.enter(h.name, "ufw --force enable");
            }
        });

        it("runs no step when the program runs again with unchanged config", async () => {
            const runs = [...(await provision(lab, LAB_STACKS.old)).runs, ...(await provision(lab, LAB_STACKS.new)).runs];
            const hosts = lab.plan.hosts.filter((h) => !h.spare);
            const expected = hosts.length * 3 + 2 + hosts.filter((h) => h.role === "app" || h.role === "edge").length + 2 + 3;
            assert.equal(runs.length, expected, "an inventory, a firewall and a mesh step per host, a database step per site, a probe step per app host, an edge step per edge host, a peer-access step per db host, the runbook's three steps in the stack that owns the flip");
            assert.deepEqual(runs.filter((r) => r.action !== "unchanged").map((r) => `${r.host} ${r.step} ${r.action}`), []);
        });

        it("re-runs only the steps whose script changed, and the hosts follow", async () => {
            const config = { ...referenceConfig("lab-old"), "cutover:adminCidrs": [ADMIN_CIDR, "203.0.113.64/26"] };
            const dir = stackDir({ "lab-old": config });
            const runs = (await provision(lab, LAB_STACKS.old, { stackDir: dir })).runs;
            assert.deepEqual(runs.filter((r) => r.action !== "unchanged").map((r) => `${r.step} ${r.action}`).sort(), ["old-hostfw-old-app-1 update", "old-hostfw-old-db-1 update", "old-hostfw-old-edge-1 update"]);
            const ufw = await lab.ssh("old-app-1", "ufw status");
            assert.match(ufw.stdout, /22\/tcp\s+ALLOW\s+203\.0\.113\.64\/26/);
            // And back: the extra rule is removed again.
            await provision(lab, LAB_STACKS.old);
            assert.doesNotMatch((await lab.ssh("old-app-1", "ufw status")).stdout, /203\.0\.113\.64/);
        });

        it("stops on a failing step, naming the host, the step, the exit code and stderr", async () => {
            // A host added with a login it does not have (a wrong user in cutover:hosts): sshd
            // answers and refuses, so the step fails at once. (A host that does not answer at
            // all is dialled again for the connection's dialErrorLimit first: minutes.)
            const config = referenceConfig("lab-new") as Record<string, any>;
            const spare = lab.host("new-app-2");
            const hosts = [...config["cutover:hosts"], { name: spare.name, role: "app", publicAddress: spare.address, privateAddress: spare.address, user: "deploy" }];
            const dir = stackDir({ "lab-new": { ...config, "cutover:hosts": hosts } });
            await assert.rejects(provision(lab, LAB_STACKS.new, { stackDir: dir }), (e: Error) => {
                assert.ok(e instanceof LabError);
                assert.match(e.message, /step new-inventory-new-app-2 on host new-app-2 failed during create: exit code 255 \(ssh: the connection failed or was lost\)\nstderr:\n.*Permission denied/s);
                return true;
            });
            // The live hosts are untouched and still serving SSH behind their firewall.
            for (const h of ["new-db-1", "old-db-1"]) assert.equal((await lab.ssh(h, "ufw status | head -1")).stdout.trim(), "Status: active");
            // Steps already running when it failed (the other new hosts' firewalls, admitting the
            // added host to the mesh port) finished and are in the state, as the engine keeps
            // them: the next run with the stack as it was takes the added host out again.
            await provision(lab, LAB_STACKS.new);
            for (const h of ["new-edge-1", "new-app-1", "new-db-1"]) {
                const ufw = (await lab.enter(h, "ufw status")).stdout;
                assert.doesNotMatch(ufw, new RegExp(`\\b${spare.address.replace(/\./g, "\\.")}\\b`), `${h} still admits ${spare.address}, added by a step of the failed run:\n${ufw}`);
            }
        });
    });
});
