// Pure renderers and address arithmetic, checked directly.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { containsAddress, overlaps, parseCidr, subnet, hostAddress } from "../../components/cidr";
import { CLOUDFLARE_IPV4 } from "../../components/firewall/cloudflare";
import { DB_PORTS, hostFirewallScript, inboundRules, ufwRules } from "../../components/firewall/render";
import { cloudInit } from "../../components/hosts/render";
import { ROLES } from "../../components/types";

const base = { dbEngine: "postgres" as const, adminCidrs: ["203.0.113.0/28", "2001:db8:ad::/48"], siteCidr: "10.20.0.0/16", publicSources: CLOUDFLARE_IPV4 };

describe("address arithmetic", () => {
    it("parses IPv4 and IPv6 ranges and rejects host bits", () => {
        assert.equal(parseCidr("10.0.0.0/8")?.prefix, 8);
        assert.equal(parseCidr("2001:db8::/32")?.version, 6);
        assert.equal(parseCidr("10.0.0.1/8"), undefined);
        assert.equal(parseCidr("10.0.0.0"), undefined);
        assert.equal(parseCidr("256.0.0.0/8"), undefined);
    });
    it("detects overlapping plans", () => {
        assert.ok(overlaps(parseCidr("10.20.0.0/16")!, parseCidr("10.20.128.0/20")!));
        assert.ok(!overlaps(parseCidr("10.20.0.0/16")!, parseCidr("10.110.0.0/20")!));
        assert.ok(!overlaps(parseCidr("10.0.0.0/8")!, parseCidr("::/0")!), "families never overlap");
    });
    it("carves subnets and addresses inside their parent", () => {
        const p = parseCidr("10.20.0.0/16")!;
        assert.equal(subnet(p, 18, 1), "10.20.64.0/18");
        assert.throws(() => subnet(p, 18, 4));
        assert.equal(hostAddress(parseCidr("198.18.1.0/24")!, 7), "198.18.1.7");
        assert.ok(containsAddress(p, "10.20.255.255"));
        assert.ok(!containsAddress(p, "10.21.0.0"));
    });
});

describe("firewall policy per role", () => {
    for (const role of ROLES) {
        it(`${role}: SSH only from admin ranges`, () => {
            const ssh = inboundRules({ ...base, role }).filter((r) => r.port === 22);
            assert.equal(ssh.length, 1);
            assert.deepEqual(ssh[0].sources, base.adminCidrs);
        });
        it(`${role}: no port but the edge's HTTP/HTTPS admits public sources`, () => {
            for (const r of inboundRules({ ...base, role, publicSources: ["0.0.0.0/0", "::/0"] })) {
                const isPublicHttp = role === "edge" && (r.port === 80 || r.port === 443);
                if (!isPublicHttp) assert.ok(r.sources.every((s) => !s.endsWith("/0")), `${role} port ${r.port} is open to ${r.sources}`);
            }
        });
    }
    it("the database port admits only the site network", () => {
        const db = inboundRules({ ...base, role: "db" }).find((r) => r.port === DB_PORTS.postgres);
        assert.deepEqual(db?.sources, [base.siteCidr]);
    });
    it("the edge admits HTTP/HTTPS only from Cloudflare when proxied", () => {
        const web = inboundRules({ ...base, role: "edge" }).filter((r) => r.port === 80 || r.port === 443);
        assert.equal(web.length, 2);
        for (const r of web) assert.deepEqual(r.sources, CLOUDFLARE_IPV4);
    });
});

describe("UFW rendering", () => {
    it("spells rules as `ufw show added` prints them", () => {
        const [rule] = ufwRules({ protocol: "tcp", port: 22, sources: ["203.0.113.0/28"], purpose: "ssh from admins" });
        assert.equal(rule, "allow from 203.0.113.0/28 to any port 22 proto tcp comment 'ssh from admins'");
    });
    it("spells a single address without /32, as UFW prints it", () => {
        const [rule] = ufwRules({ protocol: "udp", port: 655, sources: ["192.0.2.10/32"], purpose: "tinc from mesh members" });
        assert.equal(rule, "allow from 192.0.2.10 to any port 655 proto udp comment 'tinc from mesh members'");
    });
    it("folds the whole internet into one source-less rule, as UFW does", () => {
        assert.deepEqual(ufwRules({ protocol: "tcp", port: 443, sources: ["0.0.0.0/0", "::/0"], purpose: "https" }), ["allow 443/tcp comment 'https'"]);
    });
    it("refuses a purpose that would break the shell quoting", () => {
        assert.throws(() => ufwRules({ protocol: "tcp", port: 1, sources: ["10.0.0.0/8"], purpose: "it's" }), /plain words/);
    });
    it("the host script is strict, names its host on failure, and lists every wanted rule", () => {
        const rules = inboundRules({ ...base, role: "db" });
        const script = hostFirewallScript("new-db-1", rules);
        assert.match(script, /^#!\/bin\/bash\n/);
        assert.match(script, /set -euo pipefail/);
        assert.match(script, /firewall on new-db-1: /);
        for (const r of rules.flatMap(ufwRules)) assert.ok(script.includes(`\n${r}\n`), `missing ${r}`);
        assert.ok(script.indexOf("ufw_words <<<") < script.indexOf("ufw_words delete"), "adds must come before deletes so SSH is never cut");
    });
});

describe("cloud-init", () => {
    it("installs admin keys, disables passwords and runs the firewall before anything listens", () => {
        const text = cloudInit({ hostname: "old-app-1", authorizedKeys: ["ssh-ed25519 AAAAC3Nza ops@example.com"], firewallScript: "#!/bin/bash\necho hi\n" });
        assert.match(text, /^#cloud-config\n/);
        assert.match(text, /ssh_pwauth: false/);
        assert.match(text, /- "ssh-ed25519 AAAAC3Nza ops@example.com"/);
        assert.match(text, /path: \/usr\/local\/sbin\/cutover-firewall\n {4}permissions: "0700"\n {4}content: \|\n {6}#!\/bin\/bash\n {6}echo hi\n/);
        // As the first boot's run: it must not wait for the first boot to finish (that would be itself).
        assert.match(text, /runcmd:\n {2}- \[env, CUTOVER_FIRST_BOOT=1, \/usr\/local\/sbin\/cutover-firewall\]/);
    });
});
