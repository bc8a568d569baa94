// The lab's plan and renderers, checked without root.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";
import { containsAddress, parseCidr } from "../../components/cidr";
import { admits } from "../../lab/firewall-check";
import { cutRules, hostInitScript, networkCommands } from "../../lab/render";
import { ADMIN_CIDR, AUTOSCALED_HOSTS, CLOUD_HOSTS, cloudLabStackConfig, labPlan, labStackConfig, segmentOf } from "../../lab/topology";
import { groupSlots, scaleGroup } from "../../lab/cloud";
import { ROOT } from "../helpers";
import { LAB_CHAINS, LAB_FILE_SECONDS, lanesFor } from "../../tools/test-lab";
import { opensshPrivateKey, opensshPublicKey } from "../../tools/offline/mocks";
import * as crypto from "crypto";
import * as os from "os";
import { spawnSync } from "child_process";

describe("the mocks' deploy key", () => {
    it("is an OpenSSH private key that ssh loads, whose public half is the one the clouds are given", () => {
        const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
        const raw = (publicKey.export({ format: "der", type: "spki" }) as Buffer).subarray(-32);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-key-"));
        const file = path.join(dir, "key");
        fs.writeFileSync(file, opensshPrivateKey((privateKey.export({ format: "der", type: "pkcs8" }) as Buffer).subarray(-32), raw), { mode: 0o600 });
        const derived = spawnSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" });
        fs.rmSync(dir, { recursive: true, force: true });
        assert.equal(derived.status, 0, derived.stderr);
        assert.equal(derived.stdout.trim(), opensshPublicKey(raw, "").trim());
    });
});

describe("lab plan", () => {
    const plan = labPlan();

    it("keeps the committed lab stack files in step with the topology", () => {
        for (const [site, peer] of [["old", "lab-new"], ["new", "lab-old"]] as const) {
            const committed = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.lab-${site}.yaml`), "utf8")).config;
            assert.deepEqual(committed, labStackConfig(plan, site, peer), `Pulumi.lab-${site}.yaml differs from lab/topology.ts`);
        }
        const cloud = labPlan(CLOUD_HOSTS);
        for (const [site, peer] of [["old", "lab-cloud-new"], ["new", "lab-cloud-old"]] as const) {
            const committed = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.lab-cloud-${site}.yaml`), "utf8")).config;
            assert.deepEqual(committed, cloudLabStackConfig(cloud, site, peer), `Pulumi.lab-cloud-${site}.yaml differs from lab/topology.ts`);
        }
    });

    it("uses documentation ranges only, one unique address per host inside its segment", () => {
        const all = [...plan.hosts, plan.admin, plan.client];
        assert.equal(new Set(all.map((h) => h.address)).size, all.length);
        for (const h of all) assert.ok(containsAddress(parseCidr(segmentOf(plan, h.site).cidr)!, h.address), `${h.name} ${h.address}`);
        for (const s of plan.segments) assert.match(s.cidr, /^(192\.0\.2|198\.51\.100|203\.0\.113)\.0\/24$/);
    });

    it("puts the operator inside adminCidrs and the client outside", () => {
        assert.ok(containsAddress(parseCidr(ADMIN_CIDR)!, plan.admin.address));
        assert.ok(!containsAddress(parseCidr(ADMIN_CIDR)!, plan.client.address));
    });

    it("links every host to its site's bridge, with link names the kernel accepts", () => {
        const cmds = networkCommands(plan).map((c) => c.join(" "));
        for (const h of [...plan.hosts, plan.admin, plan.client]) {
            assert.ok(h.veth.length <= 15);
            assert.ok(cmds.includes(`ip -n ${plan.routerNs} link set ${h.veth} master ${segmentOf(plan, h.site).bridge} up`), h.name);
            assert.ok(cmds.includes(`ip -n ${h.netns} route add default via ${segmentOf(plan, h.site).gateway}`), h.name);
        }
    });

    it("cuts only the link between the two named segments, both ways", () => {
        const rules = cutRules(plan, "old", "new").map((r) => r.join(" "));
        assert.equal(rules.length, 2);
        assert.ok(rules.some((r) => r.startsWith("-i br-old -o br-new")) && rules.some((r) => r.startsWith("-i br-new -o br-old")));
    });

    it("boots hosts with private copy-on-write /etc, /var, /root and /home, and their own sshd", () => {
        const s = hostInitScript();
        assert.match(s, /for d in etc var root home; do/);
        assert.match(s, /mount -t overlay overlay/);
        assert.match(s, /\/usr\/sbin\/sshd /);
        assert.match(s, /set -euo pipefail/);
    });

    it("predicts what a rule set admits", () => {
        const rules = [{ protocol: "tcp" as const, port: 22, sources: ["203.0.113.0/28"], purpose: "ssh" }, { protocol: "tcp" as const, port: 443, sources: ["0.0.0.0/0"], purpose: "https" }];
        assert.equal(admits(rules, "203.0.113.10", 22), true);
        assert.equal(admits(rules, "203.0.113.100", 22), false);
        assert.equal(admits(rules, "198.51.100.7", 443), true);
        assert.equal(admits(rules, "198.51.100.7", 80), false);
    });
});

describe("the lab test lanes", () => {
    const seconds = (f: string) => LAB_FILE_SECONDS[path.basename(f)] ?? 150;
    it("puts every lab test file in exactly one lane, the lanes within the longest file or chain of each other", () => {
        const files = fs.readdirSync(path.join(ROOT, "tests/lab")).filter((f) => f.endsWith(".test.ts")).map((f) => path.join(ROOT, "tests/lab", f));
        const lanes = lanesFor(files, 2);
        assert.equal(lanes.length, 2);
        assert.deepEqual(lanes.flat().sort(), [...files].sort());
        const load = (lane: string[]) => lane.reduce((s, f) => s + seconds(f), 0);
        const chains = LAB_CHAINS.map((c) => c.reduce((s, f) => s + seconds(f), 0));
        const longest = Math.max(...files.map(seconds), ...chains);
        assert.ok(Math.abs(load(lanes[0]) - load(lanes[1])) <= longest, `lanes of ${load(lanes[0])} s and ${load(lanes[1])} s`);
        assert.deepEqual(lanesFor(files.slice(0, 1), 4), [files.slice(0, 1)], "an empty lane would build a lab for nothing");
    });
    it("runs a chain's files in one lane, one after another in the chain's order, also when only some are given", () => {
        const dir = path.join(ROOT, "tests/lab");
        const files = fs.readdirSync(dir).filter((f) => f.endsWith(".test.ts")).sort().reverse().map((f) => path.join(dir, f));
        for (const chain of LAB_CHAINS) {
            for (const given of [chain, chain.slice(1)]) {
                const chosen = files.filter((f) => given.includes(path.basename(f)) || !chain.includes(path.basename(f)));
                const lane = lanesFor(chosen, 2).find((l) => l.some((f) => given.includes(path.basename(f))))!;
                const names = lane.map((f) => path.basename(f));
                const start = names.indexOf(given[0]);
                assert.deepEqual(names.slice(start, start + given.length), given, `lane ${names.join(", ")}`);
            }
        }
    });
    it("knows each lab test file's time (a file without one is balanced as 150 s)", () => {
        const files = fs.readdirSync(path.join(ROOT, "tests/lab")).filter((f) => f.endsWith(".test.ts"));
        assert.deepEqual(files.filter((f) => LAB_FILE_SECONDS[f] === undefined), []);
    });
});

describe("the lab's auto-scaling group", () => {
    const plan = labPlan(AUTOSCALED_HOSTS);
    const cloud = (dir: string) => ({ dir, slots: Object.fromEntries(plan.hosts.map((h) => [h.name, { kind: h.cloud!, address: h.address, netns: h.netns }])) });
    const spec = { name: "new-app", version: "1", userData: "#cloud-config\n", publicKeys: [] };
    it("launches into its slots in order, and refuses a capacity it has no room for or that is not a count, before touching any instance", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-asg-"));
        try {
            assert.deepEqual(groupSlots(cloud(dir), "new-app"), ["new-app-asg-1", "new-app-asg-2"]);
            await assert.rejects(scaleGroup(cloud(dir), { ...spec, desired: 3 }), /has room for 2 instances \(new-app-asg-1, new-app-asg-2\); its desired capacity is 3/);
            await assert.rejects(scaleGroup(cloud(dir), { ...spec, desired: Number(undefined) }), /desired capacity NaN is not a count/);
            assert.deepEqual(fs.readdirSync(dir), [], "nothing launched or terminated");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
