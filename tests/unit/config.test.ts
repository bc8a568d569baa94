// Every invalid config fails with a message naming the key, the bad value and what is allowed.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, parseSiteConfig } from "../../components/config";
import { readStackFile } from "../../tools/offline/stackfile";

const ROOT = path.resolve(__dirname, "../..");

const cloud: Record<string, string> = {
    "cutover:site": "old",
    "cutover:provider": "digitalocean",
    "cutover:region": "ams3",
    "cutover:adminCidrs": JSON.stringify(["203.0.113.0/28"]),
    "cutover:network": JSON.stringify({ cidr: "10.110.0.0/20" }),
    "cutover:pools": JSON.stringify({ edge: { count: 1, size: "s-1vcpu-2gb" }, app: { count: 2, size: "s-2vcpu-4gb" }, db: { count: 1, size: "s-4vcpu-8gb" } }),
};

const existing: Record<string, string> = {
    "cutover:site": "legacy",
    "cutover:provider": "existing",
    "cutover:adminCidrs": JSON.stringify(["203.0.113.0/28"]),
    "cutover:network": JSON.stringify({ cidr: "10.0.0.0/24" }),
    "cutover:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----",
    "cutover:hosts": JSON.stringify([
        { name: "web1", role: "edge", publicAddress: "192.0.2.10", privateAddress: "10.0.0.10" },
        { name: "db1", role: "db", publicAddress: "192.0.2.11", privateAddress: "10.0.0.11" },
    ]),
};

function problems(values: Record<string, string>, secretKeys: string[] = [], stack = "test"): string[] {
    try {
        parseSiteConfig(values, secretKeys, stack);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
        return e.problems;
    }
    return [];
}

const pools = (p: unknown) => JSON.stringify(p);

// [what, base, changes, expected message fragment]
const invalid: Array<[string, Record<string, string>, Record<string, string | undefined>, string]> = [
    ["unknown provider", cloud, { "cutover:provider": "linode" }, 'cutover:provider: "linode" is not one of digitalocean, aws, existing'],
    ["count below 1", cloud, { "cutover:pools": pools({ edge: { count: 0, size: "s" } }) }, "cutover:pools.edge.count: 0 is too small: must be at least 1"],
    ["fractional count", cloud, { "cutover:pools": pools({ edge: { count: 1.5, size: "s" } }) }, "cutover:pools.edge.count: 1.5 is not allowed: must be a whole number"],
    ["unknown role", cloud, { "cutover:pools": pools({ edge: { count: 1, size: "s" }, mailer: { count: 1, size: "s" } }) }, "cutover:pools.mailer"],
    ["bad CIDR", cloud, { "cutover:adminCidrs": JSON.stringify(["203.0.113.0/33"]) }, 'cutover:adminCidrs[0]: "203.0.113.0/33" is not allowed: must be an IPv4 or IPv6 CIDR'],
    ["CIDR with host bits", cloud, { "cutover:network": JSON.stringify({ cidr: "10.110.0.1/20" }) }, 'cutover:network.cidr: "10.110.0.1/20" is not allowed'],
    ["SSH open to the world", cloud, { "cutover:adminCidrs": JSON.stringify(["0.0.0.0/0"]) }, 'cutover:adminCidrs[0]: "0.0.0.0/0" is not allowed: SSH must not be open to the whole internet'],
    ["no admin range", cloud, { "cutover:adminCidrs": "[]" }, "cutover:adminCidrs: [] needs at least 1 entry"],
    ["network too large", cloud, { "cutover:network": JSON.stringify({ cidr: "10.0.0.0/8" }) }, 'cutover:network.cidr: "10.0.0.0/8" is not allowed: must be an IPv4 range from /16 to /24'],
    ["unknown top-level key", cloud, { "cutover:regoin": "ams3" }, "cutover:regoin: unknown key; allowed here: site, provider, region"],
    ["unknown nested key", cloud, { "cutover:network": JSON.stringify({ cidr: "10.110.0.0/20", vlan: 4 }) }, "cutover:network.vlan: unknown key; allowed here: cidr"],
    ["missing site", cloud, { "cutover:site": undefined }, "cutover:site: is required"],
    ["bad site name", cloud, { "cutover:site": "Old Site" }, 'cutover:site: "Old Site" is not allowed: must be a lower-case name'],
    ["cloud without region", cloud, { "cutover:region": undefined }, "cutover:region: is required with provider digitalocean"],
    ["cloud without pools", cloud, { "cutover:pools": undefined }, "cutover:pools: is required with provider digitalocean"],
    ["no edge", cloud, { "cutover:pools": pools({ app: { count: 1, size: "s" } }) }, 'cutover:pools: ["app"] has no edge'],
    ["autoscaling outside aws", cloud, { "cutover:pools": pools({ edge: { count: 1, size: "s" }, app: { count: 2, size: "s", autoscaling: { min: 2, max: 4 } } }) }, "cutover:pools.app.autoscaling: is not allowed: only the app pool of provider aws auto-scales"],
    ["autoscaling min > max", { ...cloud, "cutover:provider": "aws", "cutover:region": "eu-west-1" }, { "cutover:pools": pools({ app: { count: 2, size: "t3.small", autoscaling: { min: 5, max: 2 } } }) }, 'cutover:pools.app.autoscaling: {"min":5,"max":2} is not allowed: min must not exceed max'],
    ["autoscaling without a zone for its certificate", { ...cloud, "cutover:provider": "aws", "cutover:region": "eu-west-1" }, { "cutover:pools": pools({ app: { count: 2, size: "t3.small", autoscaling: { min: 2, max: 4 } } }) }, "cutover:pools.app.autoscaling: needs cutover:dns: the load balancer's HTTPS certificate (the zone and *.zone) is validated by a record in that Cloudflare zone"],
    ["peer is itself", cloud, { "cutover:peer": "acme/cutover/test" }, 'cutover:peer: "acme/cutover/test" is not allowed: a stack cannot be its own peer'],
    ["malformed peer", cloud, { "cutover:peer": "old" }, 'cutover:peer: "old" is not allowed: must be a stack reference "org/project/stack"'],
    ["unknown engine", cloud, { "cutover:database": JSON.stringify({ engine: "oracle" }) }, 'cutover:database.engine: "oracle" is not one of mysql, mariadb, postgres'],
    ["hosts with a cloud provider", cloud, { "cutover:hosts": existing["cutover:hosts"] }, "cutover:hosts: is not allowed with provider digitalocean"],
    ["duplicate host names", existing, { "cutover:hosts": JSON.stringify([{ name: "web1", role: "edge", publicAddress: "192.0.2.10", privateAddress: "10.0.0.10" }, { name: "web1", role: "app", publicAddress: "192.0.2.12", privateAddress: "10.0.0.12" }]) }, 'cutover:hosts[1].name: "web1" is not allowed: duplicate of cutover:hosts[0].name'],
    ["duplicate addresses", existing, { "cutover:hosts": JSON.stringify([{ name: "web1", role: "edge", publicAddress: "192.0.2.10", privateAddress: "10.0.0.10" }, { name: "web2", role: "app", publicAddress: "192.0.2.10", privateAddress: "10.0.0.12" }]) }, 'cutover:hosts[1].publicAddress: "192.0.2.10" is not allowed: already used by cutover:hosts[0]'],
    ["private address outside the network", existing, { "cutover:hosts": JSON.stringify([{ name: "web1", role: "edge", publicAddress: "192.0.2.10", privateAddress: "10.9.0.10" }]) }, 'cutover:hosts[0].privateAddress: "10.9.0.10" is not allowed: must be inside cutover:network.cidr 10.0.0.0/24'],
    ["bad address", existing, { "cutover:hosts": JSON.stringify([{ name: "web1", role: "edge", publicAddress: "192.0.2.300", privateAddress: "10.0.0.10" }]) }, 'cutover:hosts[0].publicAddress: "192.0.2.300" is not allowed: must be an IPv4 or IPv6 address'],
    ["unknown host role", existing, { "cutover:hosts": JSON.stringify([{ name: "web1", role: "proxy", publicAddress: "192.0.2.10", privateAddress: "10.0.0.10" }]) }, 'cutover:hosts[0].role: "proxy" is not one of edge, app, worker, db, cache'],
    ["existing without a key", existing, { "cutover:sshPrivateKey": undefined }, "cutover:sshPrivateKey: is required with provider existing"],
    ["existing with pools", existing, { "cutover:pools": cloud["cutover:pools"] }, "cutover:pools: is not allowed with provider existing"],
    ["existing without an edge", existing, { "cutover:hosts": JSON.stringify([{ name: "db1", role: "db", publicAddress: "192.0.2.11", privateAddress: "10.0.0.11" }]) }, "cutover:hosts: has no host with role edge"],
    ["a runbook on edges the program does not run", existing, {
        "cutover:peer": "acme/cutover/new",
        "cutover:mesh": JSON.stringify({ cidr: "10.250.0.0/16", siteRange: "10.250.1.0/24" }),
        "cutover:dns": JSON.stringify({ zoneId: "0123456789abcdef0123456789abcdef", zone: "example.com", names: ["@"] }),
        "cutover:live": "legacy",
    }, "cutover:edge.manage: (missing) is not allowed with cutover:live and a db host: the cutover runbook holds and routes writes on every edge's HAProxy, which runs only where the program manages the edge; set cutover:edge.manage to true (existing edges default to false)"],
    ["adopt on a created site", cloud, { "cutover:adopt": JSON.stringify({ close: ["all"] }) }, "cutover:adopt: is not allowed with provider digitalocean; only existing hosts are adopted"],
    ["adopt closing an unknown host's port", existing, { "cutover:adopt": JSON.stringify({ close: ["web9:2368/tcp"] }) }, 'cutover:adopt.close[0]: "web9:2368/tcp" is not allowed: no host web9 in cutover:hosts (web1, db1)'],
    ["adopt closing a malformed port", existing, { "cutover:adopt": JSON.stringify({ close: ["2368"] }) }, 'cutover:adopt.close[0]: "2368" is not allowed: must be a port to close: "2368/tcp", "old-app-1:2368/tcp" or "all"'],
    ["adopt closing port 0", existing, { "cutover:adopt": JSON.stringify({ close: ["web1:0/tcp"] }) }, 'cutover:adopt.close[0]: "web1:0/tcp" is not allowed: the port must be 1 to 65535'],
];

describe("stack config validation", () => {
    for (const [what, base, changes, expected] of invalid) {
        it(`rejects ${what}`, () => {
            const values = { ...base };
            for (const [k, v] of Object.entries(changes)) {
                if (v === undefined) delete values[k];
                else values[k] = v;
            }
            const secretKeys = "cutover:sshPrivateKey" in values ? ["cutover:sshPrivateKey"] : [];
            const found = problems(values, secretKeys);
            assert.ok(found.some((p) => p.includes(expected)), `expected a problem containing\n  ${expected}\ngot\n  ${found.join("\n  ") || "(none: config accepted)"}`);
        });
    }

    it("reports every problem at once, not just the first", () => {
        const found = problems({ ...cloud, "cutover:provider": "linode", "cutover:adminCidrs": "[\"nope\"]" });
        assert.ok(found.length >= 2, `got ${found.join("; ")}`);
    });

    it("lists the cross-key problems in the same run as the schema errors (one fix cycle), leaving out those about a broken key", () => {
        const { "cutover:region": _region, ...noRegion } = cloud;
        const found = problems({ ...noRegion, "cutover:pools": pools({ edge: { count: 0, size: "s" } }), "cutover:peer": "acme/cutover/test" });
        for (const expected of [
            "cutover:pools.edge.count: 0 is too small: must be at least 1",
            "cutover:region: is required with provider digitalocean",
            'cutover:peer: "acme/cutover/test" is not allowed: a stack cannot be its own peer',
        ]) assert.ok(found.some((p) => p.startsWith(expected)), `missing ${expected}; got\n  ${found.join("\n  ")}`);
        assert.ok(!found.some((p) => p.startsWith("cutover:pools:")), `a rule about the broken pools key reported it missing: ${found.join("; ")}`);
    });

    it("accepts a private key only as a secret, and never prints it", () => {
        const found = problems(existing, []);
        assert.ok(found.some((p) => p.startsWith("cutover:sshPrivateKey:") && p.includes("must be a secret")), found.join("\n"));
        assert.ok(found.every((p) => !p.includes("not-a-real-key")), "the key text leaked into a message");
    });

    it("never echoes a private key pasted into another key, wherever the error is found", () => {
        const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
        const found = [
            ...problems({ ...cloud, "cutover:site": key }),
            ...problems({ ...existing, "cutover:region": key }, ["cutover:sshPrivateKey"]),
            ...problems({ ...cloud, "cutover:sshPublicKeys": JSON.stringify([key]) }),
        ];
        assert.equal(found.length, 3, found.join("\n"));
        for (const p of found) {
            assert.doesNotMatch(p, /PRIVATE KEY|b3BlbnNzaC1rZXkt/, `a key was echoed: ${p}`);
            assert.match(p, /\(a private key: value hidden\)/);
        }
        assert.match(found[0], /^cutover:site: \(a private key: value hidden\) is not allowed/);
    });

    it("does not echo a malformed secret value", () => {
        const found = problems({ ...existing, "cutover:sshPrivateKey": "" }, ["cutover:sshPrivateKey"]);
        assert.ok(found.length > 0 && found.every((p) => !p.includes('""') || p.includes("hidden")), found.join("\n"));
    });

    it("accepts a host whose public and private address are the same", () => {
        const hosts = JSON.stringify([{ name: "web1", role: "edge", publicAddress: "10.0.0.10", privateAddress: "10.0.0.10" }]);
        assert.deepEqual(problems({ ...existing, "cutover:hosts": hosts }, ["cutover:sshPrivateKey"]), []);
    });

    it("leaves other namespaces to their providers", () => {
        assert.deepEqual(problems({ ...cloud, "digitalocean:token": "x", "aws:region": "eu-west-1" }), []);
    });

    it("fills defaults a user would expect", () => {
        const c = parseSiteConfig(existing, ["cutover:sshPrivateKey"], "legacy");
        assert.equal(c.existingHosts[0].user, "root");
        assert.equal(c.existingHosts[0].port, 22);
        // An existing edge may serve visitors directly: Cloudflare-only HTTP needs the operator's word.
        assert.equal(c.edgeProxied, false);
        assert.equal(parseSiteConfig({ ...existing, "cutover:edge": JSON.stringify({ proxied: true }) }, ["cutover:sshPrivateKey"], "legacy").edgeProxied, true);
        assert.equal(parseSiteConfig(cloud, [], "old").edgeProxied, true);
        assert.deepEqual(c.adoptClose, []);
        assert.equal(c.dbEngine, "mariadb");
        const aws = parseSiteConfig({ ...cloud, "cutover:provider": "aws", "cutover:region": "eu-west-1" }, [], "new");
        assert.equal(aws.sshUser, "admin", "Debian's AWS images log in as admin");
    });

    for (const stack of ["old", "new"]) {
        it(`accepts the reference stack ${stack}`, () => {
            const file = readStackFile(ROOT, stack);
            assert.deepEqual(problems(file.config, file.secretKeys, stack), []);
        });
    }
});

describe("the project's config declarations (Pulumi.yaml)", () => {
    // The Pulumi CLI refuses to run a stack that lacks a key Pulumi.yaml declares without a
    // default ("Stack 'x' is missing configuration values ..."), so only keys the program
    // itself requires of every stack may be declared: each must be reported missing by the
    // program for both kinds of site.
    const project = require("yaml").parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    for (const [key, decl] of Object.entries<any>(project.config ?? {})) {
        it(`declares cutover:${key} only because every stack must set it`, () => {
            assert.equal(decl.default, undefined, `cutover:${key} has a default: it would reach the program as if set`);
            for (const base of [cloud, existing]) {
                const without = { ...base };
                delete without[`cutover:${key}`];
                assert.ok(problems(without).some((p) => p.startsWith(`cutover:${key}: is required`) || p.startsWith(`cutover:${key}: (missing)`)), `cutover:${key} is declared but optional for provider ${base["cutover:provider"]}`);
            }
        });
    }
});
