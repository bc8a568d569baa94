// tinc renderers and the mesh address plan, checked directly.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "crypto";
import { ConfigError, parseSiteConfig } from "../../components/config";
import { containsAddress, exactCover, parseCidr } from "../../components/cidr";
import { meshRules } from "../../components/firewall/render";
import { MeshHost, meshHubs, meshNodeName, meshScript, pkcs1PublicKey, siteHubs, tincConf, tincHostFile } from "../../components/mesh/render";
import { evaluateStack } from "../../tools/offline";
import { benchStackConfig } from "../../tools/bench-plan";
import { named, ofType, stackDir } from "../helpers";

const publicKey = crypto.generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }).toString();

function member(host: string, site: string, meshAddress: string): MeshHost {
    return { node: meshNodeName(host), host, site, publicAddress: `192.0.2.${meshAddress.split(".")[3]}`, port: 655, meshAddress, publicKey };
}

const members = [
    member("old-edge-1", "old", "198.18.1.10"),
    member("old-app-1", "old", "198.18.1.30"),
    member("old-db-1", "old", "198.18.1.110"),
    member("new-edge-1", "new", "198.18.2.10"),
    member("new-app-1", "new", "198.18.2.30"),
    member("new-db-1", "new", "198.18.2.110"),
];

const base = {
    "cutover:site": "legacy",
    "cutover:provider": "existing",
    "cutover:adminCidrs": JSON.stringify(["203.0.113.0/28"]),
    "cutover:network": JSON.stringify({ cidr: "10.0.0.0/24" }),
    "cutover:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----",
    "cutover:hosts": JSON.stringify([
        { name: "web1", role: "edge", publicAddress: "192.0.2.10", privateAddress: "10.0.0.10" },
        { name: "app1", role: "app", publicAddress: "192.0.2.11", privateAddress: "10.0.0.11" },
        { name: "app2", role: "app", publicAddress: "192.0.2.12", privateAddress: "10.0.0.12" },
    ]),
    "cutover:mesh": JSON.stringify({ cidr: "198.18.0.0/15", siteRange: "198.18.1.0/24" }),
};

function problems(changes: Record<string, string>): string[] {
    try {
        parseSiteConfig({ ...base, ...changes }, ["cutover:sshPrivateKey"], "legacy");
        return [];
    } catch (e) {
        assert.ok(e instanceof ConfigError);
        return e.problems;
    }
}

describe("mesh address plan", () => {
    it("gives each host a stable address from its role's block and position", () => {
        const c = parseSiteConfig(base, ["cutover:sshPrivateKey"], "legacy");
        assert.deepEqual(c.mesh?.addresses, { web1: "198.18.1.10", app1: "198.18.1.30", app2: "198.18.1.31" });
    });
    it("does not renumber existing hosts when one is added", () => {
        const hosts = [...JSON.parse(base["cutover:hosts"]), { name: "db1", role: "db", publicAddress: "192.0.2.13", privateAddress: "10.0.0.13" }, { name: "app3", role: "app", publicAddress: "192.0.2.14", privateAddress: "10.0.0.14" }];
        const c = parseSiteConfig({ ...base, "cutover:hosts": JSON.stringify(hosts) }, ["cutover:sshPrivateKey"], "legacy");
        assert.equal(c.mesh?.addresses.app2, "198.18.1.31");
        assert.equal(c.mesh?.addresses.app3, "198.18.1.32");
        assert.equal(c.mesh?.addresses.db1, "198.18.1.110");
    });
    it("takes its room from the site range: past 40 app hosts in a /20, the /24 addresses unchanged, none renumbered by the next", () => {
        const apps = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `app${i + 1}`, role: "app", publicAddress: `203.0.${Math.floor(i / 200) + 114}.${(i % 200) + 20}`, privateAddress: `10.0.${Math.floor(i / 200)}.${(i % 200) + 20}` }));
        const plan = (n: number, siteRange: string) => parseSiteConfig({ ...base, "cutover:network": JSON.stringify({ cidr: "10.0.0.0/20" }), "cutover:hosts": JSON.stringify([JSON.parse(base["cutover:hosts"])[0], ...apps(n)]), "cutover:mesh": JSON.stringify({ cidr: "198.18.0.0/15", siteRange }) }, ["cutover:sshPrivateKey"], "legacy").mesh!.addresses;
        const wide = plan(600, "198.18.16.0/20");
        assert.equal(wide.web1, "198.18.16.10");
        assert.deepEqual([wide.app1, wide.app40], ["198.18.16.30", "198.18.16.69"], "a site that grows past a /24's block keeps its first addresses");
        // Past the block: the app slice of the rest of the /20 (edge's slice first).
        const slice = Math.floor((4096 - 256 - 1) / 5);
        assert.equal(wide.app41, `198.18.${17 + Math.floor((slice) / 256)}.${slice % 256}`);
        assert.equal(new Set(Object.values(wide)).size, 601, "every address once");
        for (const a of Object.values(wide)) assert.ok(containsAddress(parseCidr("198.18.16.0/20")!, a), a);
        const more = plan(601, "198.18.16.0/20");
        for (const [name, a] of Object.entries(wide)) assert.equal(more[name], a, `${name} renumbered when app601 was added`);
        // A /24 holds the 40 of its block, and says how to get more.
        assert.ok(problems({ "cutover:hosts": JSON.stringify([JSON.parse(base["cutover:hosts"])[0], ...apps(41)]) }).some((p) => p === "cutover:hosts[41].meshAddress: host app41 is not allowed: the mesh plan of 198.18.1.0/24 has room for 40 app hosts; use a larger cutover:mesh.siteRange (a /20 holds 807) or pin meshAddress"));
    });
    it("rejects a site range outside the mesh, and a mesh overlapping the site network", () => {
        assert.ok(problems({ "cutover:mesh": JSON.stringify({ cidr: "198.18.0.0/16", siteRange: "198.19.1.0/24" }) }).some((p) => p.startsWith('cutover:mesh.siteRange: "198.19.1.0/24" is not allowed: must be inside cutover:mesh.cidr 198.18.0.0/16')));
        assert.ok(problems({ "cutover:mesh": JSON.stringify({ cidr: "10.0.0.0/16", siteRange: "10.0.1.0/24" }) }).some((p) => p.startsWith('cutover:mesh.cidr: "10.0.0.0/16" is not allowed: it overlaps cutover:network.cidr 10.0.0.0/24')));
    });
    it("rejects a pinned address outside the site range or used twice", () => {
        const hosts = JSON.parse(base["cutover:hosts"]);
        hosts[1].meshAddress = "198.18.1.10";
        assert.ok(problems({ "cutover:hosts": JSON.stringify(hosts) }).some((p) => p === 'cutover:hosts[1].meshAddress: "198.18.1.10" is not allowed: already the mesh address of web1'));
        hosts[1].meshAddress = "198.18.9.1";
        assert.ok(problems({ "cutover:hosts": JSON.stringify(hosts) }).some((p) => p.includes("must be inside cutover:mesh.siteRange 198.18.1.0/24")));
    });
});

describe("tinc renderers", () => {
    it("names nodes as tinc allows", () => {
        assert.equal(meshNodeName("old-db-1"), "old_db_1");
    });
    it("picks the same hubs, per site, whatever the order of the members", () => {
        const hubs = meshHubs(members, 2);
        assert.deepEqual(hubs, ["new_app_1", "new_db_1", "old_app_1", "old_db_1"]);
        assert.deepEqual(meshHubs([...members].reverse(), 2), hubs);
    });
    it("connects only to the hubs, never to itself", () => {
        const conf = tincConf(members[2], meshHubs(members, 2));
        assert.match(conf, /^Name = old_db_1$/m);
        assert.match(conf, /^Mode = router$/m);
        assert.equal((conf.match(/^ConnectTo = /gm) ?? []).length, 3);
        assert.doesNotMatch(conf, /ConnectTo = old_db_1/);
    });
    it("writes host files with the address, the /32 subnet and a PKCS#1 key tinc 1.0 reads", () => {
        const file = tincHostFile(members[0]);
        assert.match(file, /^Address = 192\.0\.2\.10$/m);
        assert.match(file, /^Subnet = 198\.18\.1\.10\/32$/m);
        assert.match(file, /-----BEGIN RSA PUBLIC KEY-----/);
        assert.match(file, /^Cipher = aes-256-cbc$/m, "tinc 1.0's default Blowfish is weaker and slower");
        assert.match(file, /^Digest = sha256$/m);
        assert.equal(crypto.createPublicKey(pkcs1PublicKey(publicKey)).export({ type: "spki", format: "pem" }).toString(), publicKey, "the conversion changed the key");
    });
    it("renders each member's host file from that member: its address, subnet and key, never another's", () => {
        // A key of its own per member, so a host file built from the wrong member shows.
        const distinct = members.map((m) => ({ ...m, publicKey: crypto.generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }).toString() }));
        const script = meshScript(distinct[2], distinct, meshHubs(distinct, 2), "198.18.0.0/15");
        for (const m of distinct) {
            const at = script.indexOf(`/etc/tinc/cutover/hosts/${m.node} 644`);
            assert.ok(at >= 0, `no host file for ${m.node}`);
            const body = script.slice(script.indexOf("\n", at) + 1, script.indexOf("\nCUTOVER_", at));
            assert.match(body, new RegExp(`^Address = ${m.publicAddress.replace(/\./g, "\\.")}$`, "m"), m.node);
            assert.match(body, new RegExp(`^Subnet = ${m.meshAddress.replace(/\./g, "\\.")}/32$`, "m"), m.node);
            assert.ok(body.includes(pkcs1PublicKey(m.publicKey).trim()), `${m.node}'s host file carries another member's key`);
        }
    });
    it("keeps the private key out of the script: it arrives on stdin", () => {
        const script = meshScript(members[0], members, meshHubs(members, 2), "198.18.0.0/15");
        assert.doesNotMatch(script, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
        assert.match(script, /key=\$\(cat\)/);
        assert.match(script, /kill -HUP/);
    });
    it("gives a member the host files of itself and the hubs it connects to, a hub every member's", () => {
        const hubs = meshHubs(members, 2);
        const filesOf = (m: MeshHost) => members.filter((x) => meshScript(m, members, hubs, "198.18.0.0/15").includes(`/etc/tinc/cutover/hosts/${x.node} 644`)).map((x) => x.node).sort();
        const leaf = members.find((m) => !hubs.includes(m.node))!;
        assert.deepEqual(filesOf(leaf), [leaf.node, ...hubs].sort());
        for (const hub of members.filter((m) => hubs.includes(m.node))) assert.deepEqual(filesOf(hub), members.map((m) => m.node).sort(), hub.node);
        // The text sent to the members grows with their number, not its square.
        const site = (n: number) => Array.from({ length: n }, (_, i) => member(`new-app-${i + 1}`, "new", `198.18.${2 + (i >> 8)}.${i & 255}`));
        const perHost = (n: number) => site(n).reduce((bytes, m, _i, all) => bytes + meshScript(m, all, meshHubs(all, 2), "198.18.0.0/15").length, 0) / n;
        assert.ok(perHost(200) < perHost(20) * 1.5, `${perHost(20).toFixed(0)} bytes per host with 20 members, ${perHost(200).toFixed(0)} with 200`);
    });
    it("admits the tinc port from exactly the members, as the fewest CIDRs", () => {
        // 10.0.0.16 to 10.0.0.47 is two /28s; 10.0.0.50 stands alone; 10.0.0.48 is not a member.
        const members = [...Array.from({ length: 32 }, (_, i) => `10.0.0.${16 + i}`), "10.0.0.50", "192.0.2.7"];
        assert.deepEqual(meshRules(655, members)[0].sources, ["10.0.0.16/28", "10.0.0.32/28", "10.0.0.50/32", "192.0.2.7/32"]);
        // Exact for any set: every address of the cover is a member, every member is covered.
        for (let round = 0; round < 20; round++) {
            const set = [...new Set(Array.from({ length: 40 }, () => `10.1.0.${Math.floor(Math.random() * 64)}`))];
            const cover = exactCover(set).map((c) => parseCidr(c)!);
            const inCover = Array.from({ length: 256 }, (_, i) => `10.1.0.${i}`).filter((a) => cover.some((c) => containsAddress(c, a)));
            assert.deepEqual(inCover.sort(), [...set].sort(), `cover ${exactCover(set).join(" ")} of ${set.join(" ")}`);
        }
    });
    it("opens the tinc port over TCP and UDP to each member once", () => {
        const rules = meshRules(655, ["192.0.2.10", "192.0.2.10", "198.51.100.20"]);
        assert.deepEqual(rules.map((r) => [r.protocol, r.port, r.sources]), [["tcp", 655, ["192.0.2.10/32", "198.51.100.20/32"]], ["udp", 655, ["192.0.2.10/32", "198.51.100.20/32"]]]);
        assert.deepEqual(meshRules(655, []), []);
    });
});

describe("a large site's steps under mocks", () => {
    it("wait for their own host's steps (and the mesh's hubs), not every host's", async () => {
        const dir = stackDir({ old: benchStackConfig("existing", "old", 30), new: benchStackConfig("existing", "new", 30) });
        const { main } = await evaluateStack({ stack: "old", stackDir: dir });
        assert.equal(main.error, undefined, main.error?.message);
        const nameOf = new Map(ofType(main, "command:remote:Command").map((r) => [r.urn, r.name]));
        const deps = (name: string, prefix: string) => named(main, "command:remote:Command", name).dependencies.flatMap((u) => nameOf.get(u) ?? []).filter((n) => n.startsWith(prefix)).sort();
        const hosts = ofType(main, "command:remote:Command").filter((r) => r.name.startsWith("old-mesh-")).map((r) => r.name.slice("old-mesh-".length));
        assert.equal(hosts.length, 30);
        for (const h of hosts) {
            assert.deepEqual(deps(`old-hostfw-${h}`, "old-inventory-"), [`old-inventory-${h}`], h);
            assert.deepEqual(deps(`old-mesh-${h}`, "old-hostfw-"), [`old-hostfw-${h}`], h);
        }
        const hubs = siteHubs(hosts.map(meshNodeName), 2).map((n) => hosts.find((h) => meshNodeName(h) === n)!);
        assert.deepEqual(deps("old-db-old-db-1", "old-mesh-"), [...new Set(["old-db-1", ...hubs])].map((h) => `old-mesh-${h}`).sort());
    });
});
