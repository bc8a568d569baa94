// The program under the SDK's mocks: what each provider creates, firewall coverage,
// secrets kept secret, and the outputs the peer stack relies on.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { containsAddress, parseCidr } from "../../components/cidr";
import { CLOUDFLARE_IPV4 } from "../../components/firewall/cloudflare";
import { ROLES } from "../../components/types";
import { Evaluation, PlanResult, evaluateStack } from "../../tools/offline";
import { named, ofType, plain, referenceConfig, stackDir, standalone, withoutSecrets } from "../helpers";

const FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtest-only-not-a-key\n-----END OPENSSH PRIVATE KEY-----";

function sourcesOf(rules: any[]): string[] {
    return rules.flatMap((r) => [...(r.sourceAddresses ?? []), ...(r.cidrBlocks ?? []), ...(r.ipv6CidrBlocks ?? [])]);
}

function assertNoPlainKey(e: Evaluation, what: string) {
    const shown = JSON.stringify(withoutSecrets({ r: e.registrations.map((r) => [r.inputs, r.outputs]), o: e.outputs }));
    assert.doesNotMatch(shown, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, `${what}: a private key is visible outside a secret`);
}

describe("old: DigitalOcean", () => {
    let e: Evaluation;
    let peer: Evaluation;
    before(async () => {
        const r = await evaluateStack({ stack: "old" });
        e = r.main;
        peer = r.peer!;
        assert.equal(e.error, undefined, e.error?.message);
    });

    it("puts one droplet per configured host in the site's VPC", () => {
        const vpc = named(e, "digitalocean:index/vpc:Vpc", "old-network-vpc");
        assert.equal(plain(vpc.inputs).ipRange, "10.110.0.0/20");
        const droplets = ofType(e, "digitalocean:index/droplet:Droplet");
        assert.deepEqual(droplets.map((d) => plain(d.inputs).name).sort(), ["old-app-1", "old-app-2", "old-app-3", "old-db-1", "old-edge-1"]);
        for (const d of droplets) {
            assert.equal(plain(d.inputs).vpcUuid, vpc.id, `${d.name} is outside the VPC`);
            assert.equal(plain(d.inputs).region, "ams3");
            assert.ok(containsAddress(parseCidr("10.110.0.0/20")!, plain(d.outputs).ipv4AddressPrivate));
        }
    });

    it("tags every droplet with its site and role", () => {
        for (const d of ofType(e, "digitalocean:index/droplet:Droplet")) {
            const { name, tags } = plain(d.inputs);
            const role = name.split("-")[1];
            assert.ok(tags.includes("site:old") && tags.includes(`role:${role}`), `${name} has tags ${tags}`);
        }
    });

    const roleFirewalls = () => ofType(e, "digitalocean:index/firewall:Firewall").filter((f) => !plain(f.inputs).name.endsWith("-mesh"));

    it("selects droplets for firewalls by tag, never by droplet id", () => {
        const firewalls = ofType(e, "digitalocean:index/firewall:Firewall");
        assert.equal(firewalls.length, 4, "one per role, and the mesh's");
        for (const f of firewalls) {
            const fw = plain(f.inputs);
            assert.ok(!fw.dropletIds || fw.dropletIds.length === 0, `${f.name} lists droplet ids`);
            assert.equal(fw.tags.length, 1);
        }
        const firewallTags = new Set(firewalls.map((f) => plain(f.inputs).tags[0]));
        for (const d of ofType(e, "digitalocean:index/droplet:Droplet")) {
            assert.ok(plain(d.inputs).tags.some((t: string) => firewallTags.has(t)), `${d.name} is covered by no firewall`);
        }
    });

    it("opens SSH only to admins and the database only to the site network and the mesh", () => {
        for (const f of ofType(e, "digitalocean:index/firewall:Firewall")) {
            for (const rule of plain(f.inputs).inboundRules) {
                if (rule.portRange === "22") assert.deepEqual(rule.sourceAddresses, ["203.0.113.0/28"], f.name);
                if (rule.portRange === "3306") assert.deepEqual(rule.sourceAddresses, ["10.110.0.0/20", "10.250.0.0/16"], f.name);
                if (rule.portRange === "80" || rule.portRange === "443") {
                    assert.equal(f.name, "old-firewall-edge");
                    assert.ok(CLOUDFLARE_IPV4.every((c) => rule.sourceAddresses.includes(c)) && !rule.sourceAddresses.includes("0.0.0.0/0"));
                }
            }
        }
    });

    it("keeps egress open (a DigitalOcean firewall without outbound rules blocks it)", () => {
        for (const f of roleFirewalls()) assert.ok(plain(f.inputs).outboundRules.length > 0, f.name);
    });

    it("opens the tinc port, TCP and UDP, only to the mesh members of both sites", () => {
        const mesh = ofType(e, "digitalocean:index/firewall:Firewall").find((f) => plain(f.inputs).name === "old-mesh")!;
        const members = [...plain(e.outputs).hosts.map((h: any) => h.publicAddress)].sort();
        assert.deepEqual(plain(mesh.inputs).tags, ["site:old"]);
        for (const rule of plain(mesh.inputs).inboundRules) {
            assert.equal(rule.portRange, "655");
            const covers = (a: string) => rule.sourceAddresses.some((s: string) => containsAddress(parseCidr(s)!, a));
            for (const m of members) assert.ok(covers(m), `${m} missing`);
            for (const m of plain(peer.outputs).mesh.members) assert.ok(covers(m.publicAddress), `the peer site's member ${m.host} is missing`);
        }
    });

    it("closes each host from first boot, and does not replace it when the boot script changes", () => {
        for (const d of ofType(e, "digitalocean:index/droplet:Droplet")) {
            assert.match(plain(d.inputs).userData, /^#cloud-config[\s\S]*cutover-firewall/);
            assert.ok(d.ignoreChanges.includes("userData"), `${d.name} would be replaced on a rule change`);
        }
    });

    it("keeps the program's deploy key secret and gives its public half to DigitalOcean", () => {
        const key = named(e, "tls:index/privateKey:PrivateKey", "old-pool-deploy-key");
        assert.ok(key.additionalSecretOutputs.includes("privateKeyOpenssh"));
        const doKey = named(e, "digitalocean:index/sshKey:SshKey", "old-pool-deploy-key");
        for (const d of ofType(e, "digitalocean:index/droplet:Droplet")) assert.deepEqual(plain(d.inputs).sshKeys, [plain(doKey.outputs).fingerprint]);
        assertNoPlainKey(e, "old");
    });

    it("enforces the host firewall on every host over a secret SSH connection", () => {
        const commands = ofType(e, "command:remote:Command").filter((c) => c.name.startsWith("old-hostfw-"));
        assert.equal(commands.length, 5);
        for (const c of commands) {
            assert.equal(withoutSecrets(c.inputs.connection), "[secret]", `${c.name}: the SSH connection (with its key) is not secret`);
            const conn = plain(c.inputs.connection);
            assert.ok(conn.dialErrorLimit >= 10 && conn.perDialTimeout > 0, `${c.name}: no retry budget for a booting host`);
            assert.match(plain(c.inputs.create), /ufw/);
        }
    });

    it("exports the site, its hosts, its edge and its inventory", () => {
        const o = plain(e.outputs);
        assert.equal(o.site, "old");
        assert.equal(o.hosts.length, 5);
        const edgeHost = o.hosts.find((h: any) => h.role === "edge");
        assert.deepEqual(o.edge, { kind: "addresses", addresses: [edgeHost.publicAddress], hostname: "" });
        assert.deepEqual(Object.keys(o.inventory).sort(), o.hosts.map((h: any) => h.name).sort());
        assert.ok(o.inventory["old-db-1"].services.some((s: any) => s.port === 3306 && s.exposure === "mesh"));
        assert.equal(o.peer.site, "new", "old reads new as its peer (mesh membership is mutual)");
    });
});

describe("new: AWS, reading old as its peer", () => {
    let r: PlanResult;
    let e: Evaluation;
    before(async () => {
        r = await evaluateStack({ stack: "new" });
        e = r.main;
        assert.equal(e.error, undefined, e.error?.message);
    });

    it("builds a VPC with subnets in two zones inside the site range", () => {
        assert.equal(plain(named(e, "aws:ec2/vpc:Vpc", "new-network-vpc").inputs).cidrBlock, "10.20.0.0/16");
        const subnets = ofType(e, "aws:ec2/subnet:Subnet").map((s) => plain(s.inputs));
        assert.equal(subnets.length, 2);
        assert.notEqual(subnets[0].availabilityZone, subnets[1].availabilityZone);
        for (const s of subnets) assert.ok(containsAddress(parseCidr("10.20.0.0/16")!, s.cidrBlock.split("/")[0]));
    });

    it("uses one region, set once on an explicit provider", () => {
        const providers = ofType(e, "pulumi:providers:aws");
        assert.equal(providers.length, 1);
        assert.equal(plain(providers[0].inputs).region, "eu-west-1");
        for (const inst of ofType(e, "aws:ec2/instance:Instance")) assert.ok(inst.provider.startsWith(providers[0].urn), `${inst.name} uses another provider`);
    });

    it("creates one instance per host with a stable name, IMDSv2 and an encrypted disk", () => {
        const instances = ofType(e, "aws:ec2/instance:Instance");
        assert.deepEqual(instances.map((i) => plain(i.inputs).tags.Name).sort(), ["new-app-1", "new-app-2", "new-app-3", "new-db-1", "new-edge-1"]);
        for (const i of instances) {
            const x = plain(i.inputs);
            assert.equal(x.metadataOptions.httpTokens, "required", i.name);
            assert.equal(x.rootBlockDevice.encrypted, true, i.name);
            assert.equal(x.tags.site, "new");
        }
    });

    it("puts each instance in its role's security group, default deny", () => {
        const groups = new Map(ofType(e, "aws:ec2/securityGroup:SecurityGroup").map((g) => [g.id, plain(g.inputs)]));
        for (const i of ofType(e, "aws:ec2/instance:Instance")) {
            const x = plain(i.inputs);
            const [sg] = x.vpcSecurityGroupIds.map((id: string) => groups.get(id));
            assert.ok(sg, `${i.name} has no security group`);
            assert.equal(sg.tags.role, x.tags.role);
            for (const rule of sg.ingress) {
                if (rule.fromPort === 22) assert.deepEqual(sourcesOf([rule]), ["203.0.113.0/28"]);
                if (rule.fromPort === 3306) assert.deepEqual(sourcesOf([rule]), ["10.20.0.0/16", "10.250.0.0/16"]);
                if (x.tags.role !== "edge") assert.ok(!sourcesOf([rule]).some((s) => s.endsWith("/0")), `${sg.name} port ${rule.fromPort} is public`);
            }
        }
    });

    it("reads the peer through a StackReference, served from the peer's offline evaluation", () => {
        const ref = ofType(e, "pulumi:pulumi:StackReference");
        assert.equal(ref.length, 1);
        assert.equal(plain(ref[0].inputs).name, "organization/cutover/old");
        const peer = plain(e.outputs).peer;
        assert.equal(peer.site, "old");
        assert.deepEqual(peer.edge, plain(r.peer!.outputs).edge, "the peer's edge is what old exports");
        assertNoPlainKey(e, "new");
    });
});

describe("aws with an auto-scaled web tier", () => {
    let e: Evaluation;
    before(async () => {
        const config = { ...standalone("new"), "cutover:database": { engine: "mariadb" }, "cutover:pools": { db: { count: 1, size: "r6i.large" }, app: { count: 3, size: "t3.medium", autoscaling: { min: 2, max: 6 } } } };
        e = (await evaluateStack({ stack: "asg", stackDir: stackDir({ asg: config }) })).main;
        assert.equal(e.error, undefined, e.error?.message);
    });

    it("runs the app tier from a launch template in an auto-scaling group behind a load balancer", () => {
        const group = plain(ofType(e, "aws:autoscaling/group:Group")[0].inputs);
        assert.equal(group.minSize, 2);
        assert.equal(group.maxSize, 6);
        assert.equal(group.desiredCapacity, 3);
        assert.equal(group.vpcZoneIdentifiers.length, 2);
        const targets = ofType(e, "aws:lb/targetGroup:TargetGroup")[0];
        assert.deepEqual(group.targetGroupArns, [targets.id]);
        const listener = ofType(e, "aws:lb/listener:Listener").map((l) => plain(l.inputs)).find((l) => l.port === 80);
        assert.equal(listener.defaultActions[0].targetGroupArn, targets.id);
        const template = plain(ofType(e, "aws:ec2/launchTemplate:LaunchTemplate")[0].inputs);
        assert.match(Buffer.from(template.userData, "base64").toString(), /^#cloud-config/);
    });

    it("rolls its instances when the launch template changes: the group follows the template's version number, with an instance refresh", () => {
        const group = plain(ofType(e, "aws:autoscaling/group:Group")[0].inputs);
        const template = plain(ofType(e, "aws:ec2/launchTemplate:LaunchTemplate")[0].outputs);
        assert.equal(group.launchTemplate.version, String(template.latestVersion), "with \"$Latest\" a changed template leaves the group unchanged, and no refresh starts");
        assert.equal(group.instanceRefresh.strategy, "Rolling");
    });

    it("serves HTTPS with an ACM certificate for the zone and *.zone, validated by a record in the Cloudflare zone", () => {
        const cert = ofType(e, "aws:acm/certificate:Certificate")[0];
        assert.deepEqual([plain(cert.inputs).domainName, plain(cert.inputs).subjectAlternativeNames], ["example.com", ["*.example.com"]]);
        const option = plain(cert.outputs).domainValidationOptions[0];
        const record = ofType(e, "cloudflare:index/dnsRecord:DnsRecord").find((r) => r.name.endsWith("-acm"))!;
        assert.deepEqual([plain(record.inputs).name, plain(record.inputs).type, plain(record.inputs).content, plain(record.inputs).proxied], [option.resourceRecordName.replace(/\.$/, ""), "CNAME", option.resourceRecordValue.replace(/\.$/, ""), false]);
        const validation = plain(ofType(e, "aws:acm/certificateValidation:CertificateValidation")[0].inputs);
        assert.equal(validation.certificateArn, plain(cert.outputs).arn);
        const https = ofType(e, "aws:lb/listener:Listener").map((l) => plain(l.inputs)).find((l) => l.port === 443);
        assert.ok(https, "no HTTPS listener");
        assert.equal(https.protocol, "HTTPS");
        assert.equal(https.certificateArn, plain(cert.outputs).arn, "the listener waits for the validated certificate");
        assert.match(https.sslPolicy, /^ELBSecurityPolicy-TLS13/);
        const targets = ofType(e, "aws:lb/targetGroup:TargetGroup")[0];
        assert.equal(https.defaultActions[0].targetGroupArn, targets.id);
    });

    it("makes the load balancer the edge and leaves auto-scaled hosts out of the host list", () => {
        const o = plain(e.outputs);
        const lb = plain(ofType(e, "aws:lb/loadBalancer:LoadBalancer")[0].outputs);
        assert.deepEqual(o.edge, { kind: "hostname", addresses: [], hostname: lb.dnsName });
        assert.deepEqual(o.hosts.map((h: any) => h.name), ["new-db-1"]);
        assert.equal(o.inventory["new-app-asg"].autoscaled, true);
        assert.equal(ofType(e, "aws:ec2/instance:Instance").length, 1);
    });

    it("admits HTTP to the load balancer only from Cloudflare", () => {
        const lbGroup = ofType(e, "aws:ec2/securityGroup:SecurityGroup").find((g) => plain(g.inputs).name === "new-lb")!;
        for (const rule of plain(lbGroup.inputs).ingress) assert.ok(CLOUDFLARE_IPV4.every((c) => rule.cidrBlocks.includes(c)));
    });
});

describe("existing hosts over SSH", () => {
    const config = {
        "cutover:site": "legacy",
        "cutover:provider": "existing",
        "cutover:adminCidrs": ["203.0.113.0/28"],
        "cutover:network": { cidr: "10.0.0.0/24" },
        "cutover:sshPrivateKey": { secure: "v1:ciphertext" },
        "cutover:hosts": [
            { name: "web1", role: "edge", publicAddress: "192.0.2.10", privateAddress: "10.0.0.10" },
            { name: "app1", role: "app", publicAddress: "192.0.2.11", privateAddress: "10.0.0.11", user: "deploy", port: 2222 },
            { name: "db1", role: "db", publicAddress: "192.0.2.12", privateAddress: "10.0.0.12" },
        ],
    };
    let direct: Evaluation;
    let viaBastion: Evaluation;
    before(async () => {
        const dir = stackDir({ legacy: config, bastioned: { ...config, "cutover:bastion": { host: "192.0.2.5", user: "jump" } } });
        const secrets = { "cutover:sshPrivateKey": FAKE_KEY };
        [direct, viaBastion] = await Promise.all([
            evaluateStack({ stack: "legacy", stackDir: dir, secrets }).then((r) => r.main),
            evaluateStack({ stack: "bastioned", stackDir: dir, secrets }).then((r) => r.main),
        ]);
        assert.equal(direct.error, undefined, direct.error?.message);
        assert.equal(viaBastion.error, undefined, viaBastion.error?.message);
    });

    it("creates nothing in any cloud", () => {
        const cloud = direct.registrations.filter((r) => /^(aws|digitalocean|cloudflare|pulumi:providers:(aws|digitalocean))/.test(r.type));
        assert.deepEqual(cloud.map((r) => r.type), []);
    });

    it("reaches each host by its address, user and port", () => {
        const conns = ofType(direct, "command:remote:Command").map((c) => plain(c.inputs.connection));
        const targets = [...new Set(conns.map((c) => JSON.stringify([c.host, c.user, c.port])))].map((t) => JSON.parse(t));
        assert.deepEqual(targets.sort(), [["192.0.2.10", "root", 22], ["192.0.2.11", "deploy", 2222], ["192.0.2.12", "root", 22]]);
        assert.ok(conns.every((c) => c.privateKey === FAKE_KEY));
    });

    it("goes through the bastion to private addresses when one is configured", () => {
        for (const c of ofType(viaBastion, "command:remote:Command")) {
            const conn = plain(c.inputs.connection);
            assert.ok(conn.host.startsWith("10.0.0."), `${c.name} dials ${conn.host}`);
            assert.deepEqual({ host: conn.proxy.host, user: conn.proxy.user, port: conn.proxy.port }, { host: "192.0.2.5", user: "jump", port: 22 });
        }
    });

    it("never shows the private key outside a secret", () => {
        assertNoPlainKey(direct, "existing");
        assertNoPlainKey(viaBastion, "existing via bastion");
        const everything = JSON.stringify(withoutSecrets([direct.registrations, direct.outputs]));
        assert.ok(!everything.includes("test-only-not-a-key"));
    });

    it("uses the same host list shape as the clouds", () => {
        const o = plain(direct.outputs);
        assert.deepEqual(Object.keys(o.hosts[0]).sort(), ["name", "privateAddress", "publicAddress", "role"]);
        assert.deepEqual(o.edge, { kind: "addresses", addresses: ["192.0.2.10"], hostname: "" });
    });
});

describe("config errors stop the program before any resource is registered", () => {
    it("registers nothing but the stack itself on an invalid config", async () => {
        const bad = { ...standalone("old"), "cutover:pools": { edge: { count: 0, size: "s" } } };
        const e = (await evaluateStack({ stack: "bad", stackDir: stackDir({ bad }) })).main;
        assert.equal(e.error?.kind, "config");
        assert.match(e.error!.message, /cutover:pools\.edge\.count: 0 is too small/);
        assert.deepEqual(e.registrations.map((r) => r.type).filter((t) => t !== "pulumi:pulumi:Stack"), []);
        assert.ok(!/\n\s+at /.test(e.error!.message), "a user mistake must not print a stack trace");
    });

    it("refuses a flip whose runbook would drive the peer's edges the peer does not run", async () => {
        const old = { ...standalone("old"), "cutover:edge": { proxied: true, manage: false } };
        const e = (await evaluateStack({ stack: "new", stackDir: stackDir({ old, new: referenceConfig("new") }) })).main;
        assert.equal(e.error?.kind, "config", e.error?.message);
        assert.match(e.error!.message, /cutover:live: "old" is not allowed yet: the runbook holds and routes writes on every edge, but the peer stack organization\/cutover\/old does not run HAProxy on its edges \(old-edge-1\); set cutover:edge\.manage to true in the peer stack/);
    });

    // Found while resolving the peer's outputs, deep inside resource inputs: it must read like any other config error.
    for (const [mesh, problem] of [
        [{ cidr: "198.18.0.0/16", siteRange: "198.18.2.0/24" }, `cutover:mesh.cidr: "198.18.0.0/16" is not allowed: the peer's mesh is "198.18.0.0/15"; both sites must use the same mesh range`],
        [{ cidr: "198.18.0.0/15", siteRange: "198.18.0.0/23" }, `cutover:mesh.siteRange: "198.18.0.0/23" is not allowed: it overlaps the peer's "198.18.1.0/24"`],
    ] as const) {
        it(`a peer mesh check reads like every other config error (${problem.split(":")[1]})`, async () => {
            const old = { ...standalone("old"), "cutover:mesh": { cidr: "198.18.0.0/15", siteRange: "198.18.1.0/24" } };
            const e = (await evaluateStack({ stack: "new", stackDir: stackDir({ old, new: { ...referenceConfig("new"), "cutover:mesh": mesh } }) })).main;
            assert.equal(e.error?.kind, "config", e.error?.message);
            assert.equal(e.error!.message, `invalid stack config:\n  ${problem}`);
        });
    }

    // Both nestings: this site's network inside the peer's, and the peer's inside this one's.
    for (const cidr of ["10.110.8.0/24", "10.110.0.0/16"]) {
        it(`rejects a peer whose address plan overlaps this site's (${cidr} against the peer's 10.110.0.0/20)`, async () => {
            const old = standalone("old");
            const mine = { ...referenceConfig("new"), "cutover:network": { cidr } };
            const e = (await evaluateStack({ stack: "new", stackDir: stackDir({ old, new: mine }) })).main;
            assert.equal(e.error?.kind, "config", e.error?.message);
            assert.match(e.error!.message, new RegExp(`cutover:network\\.cidr: "${cidr.replace(/[./]/g, "\\$&")}" is not allowed: it overlaps "10\\.110\\.0\\.0\\/20" of the peer site old`));
        });
    }
});

describe("passwords travel on stdin only", () => {
    it("no generated password is in any step's script, and each one the hosts need reaches them on a step's stdin", async () => {
        const e = (await evaluateStack({ stack: "new" })).main;
        assert.equal(e.error, undefined, e.error?.message);
        const passwords = ofType(e, "random:index/randomPassword:RandomPassword").map((p) => ({ name: p.name, value: String(plain(p.outputs).result) }));
        assert.ok(passwords.length >= 2, "the stack mints passwords");
        const commands = ofType(e, "command:remote:Command").map((c) => ({ name: c.name, inputs: plain(c.inputs) as Record<string, unknown> }));
        for (const p of passwords) {
            for (const c of commands) {
                for (const field of ["create", "update", "delete"]) {
                    assert.ok(!String(c.inputs[field] ?? "").includes(p.value), `${p.name}'s value is in the ${field} script of ${c.name}`);
                }
            }
        }
        const delivered = passwords.filter((p) => commands.some((c) => String(c.inputs.stdin ?? "").includes(p.value)));
        assert.ok(delivered.some((p) => p.name.endsWith("-replication")), `the replication password reaches no host: ${passwords.map((p) => p.name).join(", ")}`);
    });
});

describe("every role the config names gets hosts", () => {
    it("creates hosts for all five roles with their firewall groups", async () => {
        const pools = Object.fromEntries(ROLES.map((r) => [r, { count: 1, size: "s-1vcpu-2gb" }]));
        const e = (await evaluateStack({ stack: "all", stackDir: stackDir({ all: { ...standalone("old"), "cutover:pools": pools } }) })).main;
        assert.equal(e.error, undefined, e.error?.message);
        assert.deepEqual(ofType(e, "digitalocean:index/firewall:Firewall").map((f) => plain(f.inputs).name).sort(), [...ROLES.map((r) => `old-${r}`), "old-mesh"].sort());
        const cache = ofType(e, "digitalocean:index/firewall:Firewall").find((f) => plain(f.inputs).name === "old-cache")!;
        // Redis from the site only; across sites only its stunnel port, from the mesh.
        assert.ok(plain(cache.inputs).inboundRules.some((r: any) => r.portRange === "6379" && r.sourceAddresses.join() === "10.110.0.0/20"));
        assert.ok(plain(cache.inputs).inboundRules.some((r: any) => r.portRange === "6380" && r.sourceAddresses.join() === "10.110.0.0/20,10.250.0.0/16"));
    });
});
