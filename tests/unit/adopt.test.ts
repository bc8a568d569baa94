// Adopting a live legacy host: what its inventory saw serving stays reachable, from where
// it was reachable, until cutover:adopt.close names it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { keptListeners, keptWarning, parseUfwRule } from "../../components/inventory/adopt";
import { HostInventory } from "../../components/inventory/render";
import { inboundRules } from "../../components/firewall/render";
import { bindAddresses, mysqlConf } from "../../components/database/mysql";

const appRules = inboundRules({ role: "app", dbEngine: "mariadb", adminCidrs: ["203.0.113.0/28"], siteCidr: "192.0.2.0/24", publicSources: ["0.0.0.0/0", "::/0"], meshCidr: "198.18.0.0/15", cacheOnDb: false, rdsRelay: false });

function host(listening: Array<[string, string, number, string]>, firewall: HostInventory["firewall"] = { tool: "none", active: false, rules: [] }): HostInventory {
    return { packages: [], listening: listening.map(([proto, address, port, process]) => ({ proto, address, port, process })), firewall, cron: [], disks: [], data: [] };
}

const GHOST = host([
    ["tcp", "0.0.0.0", 22, "sshd"],
    ["tcp", "::", 22, "sshd"],
    ["tcp", "0.0.0.0", 2368, "node"],
    ["tcp", "::", 2368, "node"],
    ["tcp", "127.0.0.1", 3306, "mariadbd"],
    ["udp", "0.0.0.0", 68, "dhclient"],
    ["tcp", "0.0.0.0", 8125, "statsd"],
    ["tcp", "0.0.0.0", 8080, "probe"],
]);

const summary = (host: string, seen: HostInventory, close: string[] = []) => keptListeners(host, seen, appRules, close).map((k) => `${k.rule.port}/${k.rule.protocol} ${k.rule.sources.join(" ")}`);

describe("adopting a legacy host", () => {
    it("keeps every non-loopback listener the role does not serve, from anywhere when no firewall was active", () => {
        // 22 and 8080 are the role's own; loopback and the DHCP client need no rule.
        assert.deepEqual(summary("web1", GHOST), ["2368/tcp 0.0.0.0/0 ::/0", "8125/tcp 0.0.0.0/0 ::/0"]);
    });

    it("closes what cutover:adopt.close names: one port everywhere, one host's port, or all", () => {
        assert.deepEqual(summary("web1", GHOST, ["8125/tcp"]), ["2368/tcp 0.0.0.0/0 ::/0"]);
        assert.deepEqual(summary("web1", GHOST, ["web2:2368/tcp"]), ["2368/tcp 0.0.0.0/0 ::/0", "8125/tcp 0.0.0.0/0 ::/0"]);
        assert.deepEqual(summary("web1", GHOST, ["web1:2368/tcp"]), ["8125/tcp 0.0.0.0/0 ::/0"]);
        assert.deepEqual(summary("web1", GHOST, ["2368/udp", "all"]), []);
    });

    it("keeps a port from the sources the old UFW admitted it from, and not at all when no rule admitted it", () => {
        const seen = host(GHOST.listening.map((l) => [l.proto, l.address, l.port, l.process]), {
            tool: "ufw",
            active: true,
            rules: ["allow 22/tcp", "allow from 192.0.2.10 to any port 2368 proto tcp comment 'nginx'", "allow from 10.8.0.0/16 to any port 2300:2400", "deny 8125/tcp"],
        });
        assert.deepEqual(summary("web1", seen), ["2368/tcp 10.8.0.0/16 192.0.2.10/32"]);
    });

    it("keeps a port from anywhere when the old rules cannot be read (application profiles, iptables), and says why", () => {
        const profile = host([["tcp", "0.0.0.0", 2368, "node"]], { tool: "ufw", active: true, rules: ["allow 'Nginx Full'"] });
        const kept = keptListeners("web1", profile, appRules, []);
        assert.deepEqual(kept.map((k) => k.rule.sources), [["0.0.0.0/0", "::/0"]]);
        assert.match(keptWarning("web1", kept)!, /^web1: keeping what the inventory saw serving: 2368\/tcp \(node\) from anywhere: the old UFW rules name application profiles\. Close them with cutover:adopt\.close/);
        const iptables = host([["tcp", "0.0.0.0", 2368, "node"]], { tool: "iptables", active: true, rules: ["-A INPUT -p tcp --dport 2368 -s 10.0.0.0/8 -j ACCEPT"] });
        assert.match(keptWarning("web1", keptListeners("web1", iptables, appRules, []))!, /the old iptables rules are replaced by UFW/);
    });

    it("reads the UFW rule forms `ufw show added` prints", () => {
        assert.deepEqual(parseUfwRule("allow 80,443/tcp"), { ports: [[80, 80], [443, 443]], proto: "tcp", source: ["0.0.0.0/0", "::/0"] });
        assert.deepEqual(parseUfwRule("limit 22"), { ports: [[22, 22]], proto: "any", source: ["0.0.0.0/0", "::/0"] });
        assert.deepEqual(parseUfwRule("allow in on eth1 from 2001:db8::5 to any port 5432 proto tcp"), { ports: [[5432, 5432]], proto: "tcp", source: ["2001:db8::5/128"] });
        assert.deepEqual(parseUfwRule("allow from 10.0.0.0/8"), { ports: "all", proto: "any", source: ["10.0.0.0/8"] });
        assert.equal(parseUfwRule("allow from any to any app OpenSSH")?.ports, undefined);
        assert.equal(parseUfwRule("allow 'Nginx Full'")?.ports, undefined);
        assert.equal(parseUfwRule("deny 3306"), null);
        assert.equal(parseUfwRule("allow out 53/udp"), null);
    });

    it("an adopted MySQL/MariaDB keeps listening where its apps connect", () => {
        assert.equal(bindAddresses({ meshAddress: "198.18.1.110" }), "127.0.0.1,198.18.1.110");
        assert.equal(bindAddresses({ meshAddress: "198.18.1.110", keepAddresses: ["192.0.2.20"] }), "127.0.0.1,198.18.1.110,192.0.2.20");
        assert.equal(bindAddresses({ meshAddress: "198.18.1.110", keepAddresses: ["0.0.0.0"] }), "0.0.0.0");
        assert.equal(bindAddresses({ meshAddress: "198.18.1.110", keepAddresses: ["0.0.0.0", "::"] }), "*");
        assert.match(mysqlConf({ host: "db1", flavor: "mariadb", serverId: 7, meshAddress: "198.18.1.110", port: 3306, keepAddresses: ["0.0.0.0"] }), /^bind_address = 0\.0\.0\.0$/m);
    });
});
