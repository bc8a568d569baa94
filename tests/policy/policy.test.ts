// The policy pack, served as the engine serves it and driven through the Analyzer gRPC
// service. Each policy: a minimal violating resource set is reported, the nearest
// compliant variant is not, and values unknown until apply never produce a violation.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { Evaluation, Registration, evaluateStack } from "../../tools/offline";
import { Diagnostic, POLICY_PACK_DIR, PolicySession } from "../../tools/offline/analyzer";
import { stackDir, standalone } from "../helpers";

const UNKNOWN = pulumi.runtime.unknownValue;
const SECRET = (value: unknown) => ({ [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value });

/** A resource as the engine would send it (inputs; the state defaults to the inputs). */
function res(type: string, name: string, inputs: Record<string, unknown>, state?: Record<string, unknown>): Registration {
    return {
        urn: `urn:pulumi:fixture::cutover::${type}::${name}`, type, name, parent: "", custom: true, inputs, outputs: state ?? inputs,
        id: `${name}-id`, provider: "", protect: false, ignoreChanges: [], importId: "", additionalSecretOutputs: [], dependencies: [], propertyDependencies: {}, mode: "register",
    };
}

const DO_FW = "digitalocean:index/firewall:Firewall";
const SG = "aws:ec2/securityGroup:SecurityGroup";
const DROPLET = "digitalocean:index/droplet:Droplet";
const CMD = "command:remote:Command";

const goodDroplet = (name: string, extra: Record<string, unknown> = {}) =>
    res(DROPLET, name, { name, size: "m-2vcpu-16gb", tags: ["site:old", "role:db", "cutover-old-db"], monitoring: true, userData: "#cloud-config\n", ...extra });
const fw = (name: string, rules: unknown[], tags: unknown = ["cutover-old-db"]) => res(DO_FW, name, { name, tags, inboundRules: rules, outboundRules: [] });

function only(ds: Diagnostic[], policy: string): Diagnostic[] {
    return ds.filter((d) => d.policy === policy);
}

function sessionFor(config: Record<string, unknown>): Promise<PolicySession> {
    const text = Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
    return PolicySession.start({ packDir: POLICY_PACK_DIR, project: "cutover", stack: "fixture", config: text, preview: true });
}

describe("policy pack through the Analyzer protocol", () => {
    let pack: PolicySession;
    let noMigration: PolicySession;
    before(async () => {
        [pack, noMigration] = await Promise.all([
            sessionFor({ "cutover:adminCidrs": ["203.0.113.0/28"], "cutover:peer": "organization/cutover/old" }),
            sessionFor({ "cutover:adminCidrs": ["203.0.113.0/28"] }),
        ]);
    });
    after(() => {
        pack?.close();
        noMigration?.close();
    });

    it("announces its policies with their enforcement levels", () => {
        const levels = Object.fromEntries(pack.info.policies.map((p) => [p.name, p.level]));
        assert.equal(pack.info.name, "cutover");
        assert.equal(levels["no-public-data-ports"], "mandatory");
        assert.equal(levels["database-not-burstable"], "advisory");
        assert.ok(pack.info.policies.length >= 10);
    });

    describe("no-public-data-ports", () => {
        it("reports a database port open to the internet on a DigitalOcean firewall", async () => {
            const ds = only(await pack.check([fw("db", [{ protocol: "tcp", portRange: "3306", sourceAddresses: ["0.0.0.0/0"] }])]), "no-public-data-ports");
            assert.equal(ds.length, 1);
            assert.equal(ds[0].level, "mandatory");
            assert.match(ds[0].message, /mysql port 3306 is open to 0\.0\.0\.0\/0/);
        });
        it("reports an all-ports AWS rule from ::/0, naming each private port it exposes", async () => {
            const sg = res(SG, "wide", { name: "wide", ingress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: [], ipv6CidrBlocks: ["::/0"] }] });
            const msgs = only(await pack.check([sg]), "no-public-data-ports").map((d) => d.message).join("\n");
            for (const port of [3306, 5432, 6379, 655]) assert.match(msgs, new RegExp(`port ${port} is open to ::/0`));
        });
        it("reports a standalone ingress rule resource", async () => {
            const rule = res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "redis", { securityGroupId: "sg-1", ipProtocol: "tcp", fromPort: 6379, toPort: 6379, cidrIpv4: "0.0.0.0/0" });
            assert.equal(only(await pack.check([rule]), "no-public-data-ports").length, 1);
        });
        it("accepts the same ports from the site network, and HTTPS from anywhere", async () => {
            const ok = [
                fw("db", [{ protocol: "tcp", portRange: "3306", sourceAddresses: ["10.110.0.0/20"] }]),
                res(SG, "edge", { name: "edge", ingress: [{ protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }] }),
            ];
            assert.deepEqual(only(await pack.check(ok), "no-public-data-ports"), []);
        });
        it("does not guess when a rule's sources are unknown until apply", async () => {
            const ds = await pack.check([fw("db", [{ protocol: "tcp", portRange: "3306", sourceAddresses: [UNKNOWN] }]), fw("db2", UNKNOWN as unknown as unknown[])]);
            assert.deepEqual(ds.filter((d) => d.level === "mandatory"), []);
            assert.deepEqual(ds.filter((d) => /can't run/.test(d.message)), [], "a policy crashed on an unknown value");
        });
    });

    describe("ssh-admin-only", () => {
        it("reports SSH from outside cutover:adminCidrs", async () => {
            const ds = only(await pack.check([fw("app", [{ protocol: "tcp", portRange: "22", sourceAddresses: ["198.51.100.0/24"] }])]), "ssh-admin-only");
            assert.equal(ds.length, 1);
            assert.match(ds[0].message, /open to 198\.51\.100\.0\/24, outside cutover:adminCidrs \(203\.0\.113\.0\/28\)/);
        });
        it("accepts SSH from a range inside the admin ranges", async () => {
            assert.deepEqual(only(await pack.check([fw("app", [{ protocol: "tcp", portRange: "22", sourceAddresses: ["203.0.113.8/29"] }])]), "ssh-admin-only"), []);
        });
        it("reports SSH open to the whole internet (0.0.0.0/0 and ::/0) even though admin ranges are configured", async () => {
            const sg = res(SG, "open", { name: "open", ingress: [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }] });
            const ds = only(await pack.check([sg, fw("do", [{ protocol: "tcp", portRange: "22", sourceAddresses: ["0.0.0.0/0"] }])]), "ssh-admin-only");
            assert.deepEqual(ds.map((d) => d.message.match(/open to (\S+),/)?.[1]).sort(), ["0.0.0.0/0", "0.0.0.0/0", "::/0"]);
            assert.ok(ds.every((d) => d.level === "mandatory"));
        });
        it("counts a port range that spans 22", async () => {
            const sg = res(SG, "range", { name: "range", ingress: [{ protocol: "tcp", fromPort: 1, toPort: 1024, cidrBlocks: ["192.0.2.0/24"] }] });
            assert.equal(only(await pack.check([sg]), "ssh-admin-only").length, 1);
        });
    });

    describe("no-plaintext-secrets", () => {
        it("reports a password written into a command's script", async () => {
            const cmd = res(CMD, "repl-user", { create: "mysql -e \"CREATE USER 'repl'@'%' IDENTIFIED BY 'hunter2-secret' REQUIRE SSL\"" });
            const ds = only(await pack.check([cmd]), "no-plaintext-secrets");
            assert.equal(ds.length, 1);
            assert.match(ds[0].message, /create contains a database password in plain text/);
        });
        it("accepts the password passed through the environment as a secret", async () => {
            const cmd = res(CMD, "repl-user", { create: "mysql -e \"CREATE USER 'repl'@'%' IDENTIFIED BY '$REPL_PASSWORD' REQUIRE SSL\"", environment: SECRET({ REPL_PASSWORD: "hunter2-secret" }) });
            assert.deepEqual(only(await pack.check([cmd]), "no-plaintext-secrets"), []);
        });
        it("reports a private key in user data, also when base64-encoded in a launch template", async () => {
            const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----";
            const lt = res("aws:ec2/launchTemplate:LaunchTemplate", "web", { userData: Buffer.from(`#cloud-config\nwrite_files:\n  - content: |\n      ${key}\n`).toString("base64"), tagSpecifications: [{ resourceType: "instance", tags: { site: "new", role: "app" } }], vpcSecurityGroupIds: ["sg-1"] });
            const ds = only(await pack.check([goodDroplet("d", { userData: `#cloud-config\n${key}` }), lt]), "no-plaintext-secrets");
            assert.equal(ds.length, 2);
            assert.ok(ds.every((d) => /private key/.test(d.message)));
        });
        it("reports a Redis password in a config file written by a script", async () => {
            const cmd = res(CMD, "redis", { create: "cat > /etc/redis/cutover.conf <<'EOF'\nrequirepass s3cr3tvalue\nEOF" });
            assert.equal(only(await pack.check([cmd]), "no-plaintext-secrets").length, 1);
        });
        it("has nothing to judge in a script unknown until apply", async () => {
            const ds = await pack.check([res(CMD, "later", { create: UNKNOWN })]);
            assert.deepEqual(ds, []);
        });
    });

    describe("managed-databases-private", () => {
        const rds = (extra: Record<string, unknown>) => res("aws:rds/instance:Instance", "replica", { engine: "mysql", instanceClass: "db.r6g.large", ...extra });
        it("reports a public or unencrypted RDS instance", async () => {
            const ds = only(await pack.check([rds({ publiclyAccessible: true, storageEncrypted: false })]), "managed-databases-private");
            assert.equal(ds.length, 2);
        });
        it("accepts a private, encrypted RDS instance", async () => {
            assert.deepEqual(only(await pack.check([rds({ publiclyAccessible: false, storageEncrypted: true })]), "managed-databases-private"), []);
        });
    });

    describe("dns-proxied-or-short-ttl", () => {
        const record = (extra: Record<string, unknown>) => res("cloudflare:index/dnsRecord:DnsRecord", "www", { zoneId: "z", name: "www", type: "CNAME", content: "edge.example.com", ...extra });
        it("reports a long-lived unproxied record while a migration is configured", async () => {
            const ds = only(await pack.check([record({ proxied: false, ttl: 3600 })]), "dns-proxied-or-short-ttl");
            assert.equal(ds.length, 1);
            assert.match(ds[0].message, /ttl 3600/);
        });
        it("accepts a proxied record, or a TTL of 300", async () => {
            assert.deepEqual(only(await pack.check([record({ proxied: true, ttl: 1 }), record({ proxied: false, ttl: 300 })]), "dns-proxied-or-short-ttl"), []);
        });
        it("does not apply when no migration is configured", async () => {
            assert.deepEqual(only(await noMigration.check([record({ proxied: false, ttl: 3600 })]), "dns-proxied-or-short-ttl"), []);
        });
    });

    describe("hosts-tagged-site-role", () => {
        it("reports a droplet without a site tag and an auto-scaling group without a role tag", async () => {
            const asg = res("aws:autoscaling/group:Group", "web", { minSize: 1, maxSize: 2, tags: [{ key: "site", value: "new", propagateAtLaunch: true }] });
            const ds = only(await pack.check([goodDroplet("d", { tags: ["role:app", "cutover-old-db"] }), asg]), "hosts-tagged-site-role");
            assert.deepEqual(ds.map((d) => d.message.split(":")[0].replace(/^.*\n/, "")).sort(), ["missing tag role", "missing tag site"]);
        });
        it("accepts tagged hosts on both clouds", async () => {
            const inst = res("aws:ec2/instance:Instance", "i", { instanceType: "m6i.large", tags: { site: "new", role: "app", Name: "new-app-1" }, vpcSecurityGroupIds: ["sg-1"] });
            assert.deepEqual(only(await pack.check([goodDroplet("d"), inst]), "hosts-tagged-site-role"), []);
        });
    });

    describe("hosts-behind-cloud-firewall", () => {
        it("reports a droplet no firewall selects and an instance without a security group", async () => {
            const inst = res("aws:ec2/instance:Instance", "naked", { instanceType: "m6i.large", tags: { site: "new", role: "app" }, vpcSecurityGroupIds: [] });
            const ds = only(await pack.check([fw("fw", [], ["cutover-old-app"]), goodDroplet("d"), inst]), "hosts-behind-cloud-firewall");
            assert.equal(ds.length, 2);
            assert.ok(ds.some((d) => /droplet d is selected by no cloud firewall/.test(d.message)));
            assert.ok(ds.some((d) => /Instance naked has no security group/.test(d.message)));
        });
        it("accepts a droplet selected by tag, or by id", async () => {
            const byId = res(DO_FW, "byid", { name: "byid", tags: [], dropletIds: [424242], inboundRules: [] });
            const droplet = goodDroplet("d2", { tags: ["site:old", "role:app"] });
            droplet.outputs = { ...droplet.inputs, id: "424242" };
            droplet.id = "424242";
            assert.deepEqual(only(await pack.check([fw("fw", []), goodDroplet("d"), byId, droplet]), "hosts-behind-cloud-firewall"), []);
        });
        it("accepts a droplet a firewall names by id while its id is still unknown (a preview): the firewall's dropletIds came from it", async () => {
            const droplet = goodDroplet("d3", { tags: ["site:old", "role:app"] });
            droplet.id = "";
            const byId = res(DO_FW, "byid", { name: "byid", tags: [], dropletIds: [UNKNOWN], inboundRules: [] });
            byId.propertyDependencies = { dropletIds: [droplet.urn] };
            byId.dependencies = [droplet.urn];
            assert.deepEqual(only(await pack.check([droplet, byId]), "hosts-behind-cloud-firewall"), []);
            byId.propertyDependencies = {};
            assert.equal(only(await pack.check([droplet, byId]), "hosts-behind-cloud-firewall").length, 1, "a firewall of unknown ids that names no droplet covers none");
        });
        it("gives no verdict while security groups are unknown until apply", async () => {
            const inst = res("aws:ec2/instance:Instance", "i", { instanceType: "m6i.large", tags: { site: "new", role: "app" }, vpcSecurityGroupIds: [UNKNOWN] });
            const ds = await pack.check([inst]);
            assert.deepEqual(only(ds, "hosts-behind-cloud-firewall"), []);
            assert.deepEqual(ds.filter((d) => /can't run/.test(d.message)), []);
        });
    });

    describe("backup-buckets-protected", () => {
        const bucket = res("aws:s3/bucketV2:BucketV2", "backups", { bucket: "acme-backups", tags: { purpose: "backup" } }, { bucket: "acme-backups", id: "acme-backups", tags: { purpose: "backup" } });
        it("reports a backup bucket without encryption, versioning and public access block", async () => {
            const ds = only(await pack.check([bucket]), "backup-buckets-protected");
            assert.equal(ds.length, 1);
            assert.match(ds[0].message, /no server-side encryption, versioning not enabled, public access not fully blocked/);
        });
        it("accepts it with all three, and ignores buckets that are not for backups", async () => {
            const side = [
                res("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2", "sse", { bucket: "acme-backups", rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" } }] }),
                res("aws:s3/bucketVersioningV2:BucketVersioningV2", "ver", { bucket: "acme-backups", versioningConfiguration: { status: "Enabled" } }),
                res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", { bucket: "acme-backups", blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }),
            ];
            const media = res("aws:s3/bucketV2:BucketV2", "media", { bucket: "acme-media", tags: { purpose: "media" } });
            assert.deepEqual(only(await pack.check([bucket, ...side, media]), "backup-buckets-protected"), []);
        });
    });

    describe("stateful-resources-protected", () => {
        const prot = (r: Registration): Registration => ({ ...r, protect: true });
        const unprotected = [
            goodDroplet("db-droplet"),
            res("aws:ec2/instance:Instance", "cache-instance", { instanceType: "r6i.large", tags: { site: "new", role: "cache" }, vpcSecurityGroupIds: ["sg-1"] }),
            res("digitalocean:index/volume:Volume", "data", { region: "ams3", size: 100 }),
            res("aws:rds/instance:Instance", "rds", { engine: "mysql", instanceClass: "db.r6g.large", storageEncrypted: true }),
            res("aws:s3/bucket:Bucket", "backups", { bucketPrefix: "cutover-new-backup-", tags: { site: "new", purpose: "backup" } }),
            res("aws:s3/bucket:Bucket", "media", { bucketPrefix: "cutover-new-media-", tags: { site: "new", purpose: "media" } }),
        ];
        it("blocks an unprotected database or cache host, data volume, RDS instance, backup or media bucket, naming what it is", async () => {
            const ds = only(await pack.check(unprotected), "stateful-resources-protected");
            assert.deepEqual(ds.map((d) => [d.urn.split("::").pop(), d.level, d.message.replace(/ is not protected:.*/s, "").replace(/^.*\n/, "")]), [
                ["db-droplet", "mandatory", "database host"],
                ["cache-instance", "mandatory", "cache host"],
                ["data", "mandatory", "data volume"],
                ["rds", "mandatory", "managed database"],
                ["backups", "mandatory", "backup bucket"],
                ["media", "mandatory", "media bucket"],
            ]);
        });
        it("accepts them protected, and leaves stateless hosts and other buckets alone", async () => {
            const app = goodDroplet("app", { tags: ["site:old", "role:app", "cutover-old-app"] });
            const logs = res("aws:s3/bucket:Bucket", "logs", { tags: { purpose: "logs" } });
            assert.deepEqual(only(await pack.check([...unprotected.map(prot), app, logs]), "stateful-resources-protected"), []);
        });
    });

    describe("advisory policies", () => {
        it("advises against a burstable database host, not against a dedicated one", async () => {
            const ds = only(await pack.check([goodDroplet("small", { size: "s-2vcpu-4gb" }), goodDroplet("big")]), "database-not-burstable");
            assert.equal(ds.length, 1);
            assert.equal(ds[0].level, "advisory");
            assert.match(ds[0].urn, /small$/);
        });
        it("advises turning droplet monitoring on", async () => {
            const ds = only(await pack.check([goodDroplet("quiet", { monitoring: false }), goodDroplet("loud")]), "host-monitoring-on");
            assert.equal(ds.length, 1);
            assert.equal(ds[0].level, "advisory");
        });
    });
});

describe("the reference stacks under the pack, as a preview", () => {
    for (const stack of ["old", "new"]) {
        let e: Evaluation;
        let ds: Diagnostic[];
        before(async () => {
            const r = await evaluateStack({ stack, preview: true });
            e = r.main;
            assert.equal(e.error, undefined, e.error?.message);
            const session = await PolicySession.start({ packDir: POLICY_PACK_DIR, project: "cutover", stack, config: r.stackFile.config, preview: true });
            try {
                ds = await session.check(e.registrations);
            } finally {
                session.close();
            }
        });
        it(`${stack}: the preview really contains values unknown until apply`, () => {
            assert.ok(JSON.stringify(e.registrations.map((r) => r.inputs)).includes(UNKNOWN));
        });
        it(`${stack}: passes every policy, and none had to give up on an unknown`, () => {
            assert.deepEqual(ds.map((d) => `${d.policy}: ${d.message}`), []);
        });
    }

    it("a database on a shared-CPU size is advised against from the stack config alone", async () => {
        const config = { ...standalone("old"), "cutover:pools": { edge: { count: 1, size: "s-1vcpu-2gb" }, db: { count: 1, size: "s-2vcpu-4gb" } } };
        const r = await evaluateStack({ stack: "small", stackDir: stackDir({ small: config }), preview: true });
        const session = await PolicySession.start({ packDir: POLICY_PACK_DIR, project: "cutover", stack: "small", config: r.stackFile.config, preview: true });
        try {
            const ds = await session.check(r.main.registrations);
            assert.deepEqual(ds.map((d) => [d.policy, d.level]), [["database-not-burstable", "advisory"]]);
        } finally {
            session.close();
        }
    });
});
