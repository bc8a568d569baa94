// `npm run plan` as a user runs it: output, exit codes, and messages for mistakes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as path from "path";
import { ROOT, referenceConfig, stackDir, standalone } from "../helpers";

function plan(...args: string[]) {
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "tools/plan.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
}

const STACK_TRACE = /\n\s+at .+:\d+:\d+/;

describe("npm run plan", () => {
    it("lists the old site's VPC, droplets and firewalls and its outputs", () => {
        const r = plan("--stack", "old");
        assert.equal(r.code, 0, r.err);
        assert.match(r.out, /\+ digitalocean:index\/vpc:Vpc {2}old-network-vpc/);
        assert.equal((r.out.match(/\+ digitalocean:index\/droplet:Droplet /g) ?? []).length, 5);
        assert.equal((r.out.match(/\+ digitalocean:index\/firewall:Firewall /g) ?? []).length, 4);
        assert.match(r.out, /Outputs:\n\{[\s\S]*"site": "old"/);
        assert.match(r.out, /Policies:\n {4}✅ cutover@v0\.1\.0 \(local: policies\)/);
        assert.match(r.out, /userData: <cloud-init, \d+ lines, sha256:[0-9a-f]{12}>/);
        assert.doesNotMatch(r.out, /PRIVATE KEY/);
    });

    it("--live shows exactly what a flip changes: the runbook's steps, the public names' content and the edge's live file", () => {
        const r = plan("--stack", "new", "--live", "new", "--no-policy");
        assert.equal(r.code, 0, r.err);
        const section = r.out.slice(r.out.indexOf("If cutover:live were"));
        assert.match(section, /^If cutover:live were "new" \(now "old"\): 8 resource\(s\) change/);
        const changed = [...section.matchAll(/^ {2}([~+-]) (\S+) {2}(\S+)$/gm)].map((m) => `${m[1]} ${m[3]}`);
        const steps = ["precheck", "switch", "resume"].map((s) => `~ new-runbook-${s}`);
        assert.deepEqual(changed.sort(), [...steps, "~ new-dns-apex", "~ new-dns-shop-1", "~ new-dns-shop-2", "~ new-dns-www", "~ new-edge-new-edge-1"].sort());
        // Each runbook step says where it runs and which way.
        assert.match(section, /new-runbook-precheck\n\s+create: <script "cutover runbook: precheck on old-db-1 \(new -> old, attempt 1\)"[^>]*> -> <script "cutover runbook: precheck on new-db-1 \(old -> new, attempt 1\)"/);
        assert.match(section, /new-runbook-switch\n\s+create: .* -> <script "cutover runbook: switch on new-db-1 \(old -> new/);
        assert.match(section, /new-runbook-resume\n\s+create: .* -> <script "cutover runbook: resume on old-db-1 \(old -> new/);
        assert.equal((section.match(/content: "old\.origin\.example\.com" -> "new\.origin\.example\.com"/g) ?? []).length, 4);
        assert.doesNotMatch(section, /type:/, "no record changes type");
        const none = plan("--stack", "old", "--live", "new", "--no-policy");
        assert.equal(none.code, 2);
        assert.match(none.err, /--live: stack old has no cutover:live/);
    });

    it("evaluates the peer first for the new site and shows what it read", () => {
        const r = plan("--stack", "new");
        assert.equal(r.code, 0, r.err);
        assert.match(r.out, /peer: organization\/cutover\/old, evaluated offline from Pulumi\.old\.yaml/);
        assert.match(r.out, /read pulumi:pulumi:StackReference {2}new-peer/);
        assert.equal((r.out.match(/\+ aws:ec2\/instance:Instance /g) ?? []).length, 5);
        assert.match(r.out, /"peer": \{[\s\S]*"site": "old"/);
    });

    it("masks secrets in what it prints", () => {
        const dir = stackDir({
            legacy: {
                "cutover:site": "legacy",
                "cutover:provider": "existing",
                "cutover:adminCidrs": ["203.0.113.0/28"],
                "cutover:network": { cidr: "10.0.0.0/24" },
                "cutover:sshPrivateKey": { secure: "v1:ciphertext" },
                "cutover:hosts": [{ name: "web1", role: "edge", publicAddress: "192.0.2.10", privateAddress: "10.0.0.10" }],
            },
        });
        const r = plan("--stack", "legacy", "--dir", dir);
        assert.equal(r.code, 0, r.err);
        // The command provider marks the whole connection secret, as a real preview shows it.
        assert.match(r.out, /connection: \[secret\]/);
        assert.doesNotMatch(r.out, /offline-placeholder/);
    });

    it("exits 2 on an invalid config, naming key, value and what is allowed, without a stack trace", () => {
        const dir = stackDir({ broken: { ...standalone("old"), "cutover:provider": "linode" } });
        const r = plan("--stack", "broken", "--dir", dir);
        assert.equal(r.code, 2);
        assert.match(r.err, /cutover:provider: "linode" is not one of digitalocean, aws, existing/);
        assert.doesNotMatch(r.err + r.out, STACK_TRACE);
        assert.doesNotMatch(r.out, /Resources/);
    });

    it("exits 2 naming the stacks it knows when the stack file is missing", () => {
        const r = plan("--stack", "staging");
        assert.equal(r.code, 2);
        assert.match(r.err, /no Pulumi\.staging\.yaml in .*; stacks here: .*new.*old/);
    });

    it("exits 2 when the peer cannot be evaluated", () => {
        const dir = stackDir({ lonely: { ...referenceConfig("new"), "cutover:peer": "acme/cutover/ghost" } });
        const r = plan("--stack", "lonely", "--dir", dir);
        assert.equal(r.code, 2);
        assert.match(r.err, /cutover:peer: "acme\/cutover\/ghost" cannot be evaluated offline: no Pulumi\.ghost\.yaml/);
    });

    it("exits 2 on usage mistakes", () => {
        assert.equal(plan().code, 2);
        assert.equal(plan("--stack", "old", "--frobnicate").code, 2);
    });
});
