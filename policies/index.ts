// The cutover policy pack. Run by the Pulumi engine with `pulumi preview --policy-pack policies`
// and offline by `npm run policy -- --stack <name>`, both through the Analyzer gRPC protocol.
// The engine hands the pack the stack's config in its configureStack call (see
// stack-config.ts), so policies can read cutover:adminCidrs and know whether a migration
// is configured.
import "./stack-config";
import * as pulumi from "@pulumi/pulumi";
import { PolicyPack, PolicyResource, ReportViolation, ResourceValidationArgs, StackValidationArgs } from "@pulumi/policy";
import {
    BURSTABLE,
    Ingress,
    awsIngress,
    decodeUserData,
    doIngress,
    missingSiteRoleTags,
    plaintextSecrets,
    publicPrivatePorts,
    sshOutsideAdmins,
    statefulKind,
} from "./rules";

type Props = Record<string, any>;

/** Stands where a value is unknown until apply (a preview of new resources). */
export const UNKNOWN = Symbol("known after apply");

/**
 * Copies policy properties into plain data, with UNKNOWN where the engine sent an
 * unknown. The framework's proxies throw on touching an unknown; doing the copy once
 * per policy keeps rules simple and guarantees an unknown never proves a violation.
 */
function resolve(read: () => unknown): any {
    let v: unknown;
    try {
        v = read();
    } catch (e) {
        if ((e as Error)?.constructor?.name === "UnknownValueError") return UNKNOWN;
        throw e;
    }
    if (Array.isArray(v)) return Array.from({ length: v.length }, (_, i) => resolve(() => (v as unknown[])[i]));
    if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).map((k) => [k, resolve(() => (v as Props)[k])]));
    return v;
}

function propsOf(r: { props: Props }): Props {
    return resolve(() => r.props);
}

function stackConfig(key: string): unknown {
    const text = pulumi.runtime.allConfig()[`cutover:${key}`];
    if (text === undefined) return undefined;
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

function adminCidrs(): string[] {
    const v = stackConfig("adminCidrs");
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** Inbound rules of every firewall-like resource, normalised; undefined when not one. */
function list(v: unknown): any[] {
    return Array.isArray(v) ? v : [];
}

/** Inbound rules of every firewall-like resource (plain props), normalised; undefined when not one. */
function ingressOf(type: string, p: Props): Ingress[] | undefined {
    switch (type) {
        case "digitalocean:index/firewall:Firewall":
            return doIngress(list(p.inboundRules));
        case "aws:ec2/securityGroup:SecurityGroup":
            return awsIngress(list(p.ingress));
        case "aws:ec2/securityGroupRule:SecurityGroupRule":
            return p.type === "ingress" ? awsIngress([p]) : [];
        case "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
            return awsIngress([{ protocol: p.ipProtocol, fromPort: p.fromPort, toPort: p.toPort, cidrBlocks: [p.cidrIpv4].filter(Boolean), ipv6CidrBlocks: [p.cidrIpv6].filter(Boolean) }]);
        default:
            return undefined;
    }
}

/** Known strings among the given fields. */
function knownText(p: Props, fields: string[]): Array<[string, string]> {
    return fields.filter((f) => typeof p[f] === "string").map((f) => [f, p[f] as string]);
}

const SCRIPT_FIELDS: Record<string, string[]> = {
    "command:remote:Command": ["create", "update", "delete"],
    "command:local:Command": ["create", "update", "delete"],
    "digitalocean:index/droplet:Droplet": ["userData"],
    "aws:ec2/instance:Instance": ["userData", "userDataBase64"],
    "aws:ec2/launchTemplate:LaunchTemplate": ["userData"],
};

const BUCKET_TYPES = ["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"];

/** Resources of the given types, with plain props. */
function resourcesOf(resources: PolicyResource[], ...types: string[]): Array<{ r: PolicyResource; p: Props }> {
    return resources.filter((r) => types.includes(r.type)).map((r) => ({ r, p: propsOf(r) }));
}

function strings(v: unknown): string[] {
    return list(v).filter((x): x is string => typeof x === "string");
}

new PolicyPack("cutover", {
    policies: [
        {
            name: "no-public-data-ports",
            description: "Database, cache, replication and mesh ports are never open to 0.0.0.0/0 or ::/0.",
            enforcementLevel: "mandatory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                const rules = ingressOf(args.type, propsOf(args));
                for (const m of publicPrivatePorts(rules ?? [])) {
                    report(`${m}: admit only the site network or mesh peers (these ports carry data, not traffic for the public).`);
                }
            },
        },
        {
            name: "ssh-admin-only",
            description: "SSH is reachable only from the stack's cutover:adminCidrs.",
            enforcementLevel: "mandatory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                const rules = ingressOf(args.type, propsOf(args));
                for (const m of sshOutsideAdmins(rules ?? [], adminCidrs())) report(`${m}: restrict the source to the admin ranges.`);
            },
        },
        {
            name: "no-plaintext-secrets",
            description: "Scripts and user data carry no password, key or token in plain text: they are stored and shown as text.",
            enforcementLevel: "mandatory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                const fields = SCRIPT_FIELDS[args.type];
                if (!fields) return;
                for (const [field, raw] of knownText(propsOf(args), fields)) {
                    const text = field.startsWith("userData") ? decodeUserData(raw) : raw;
                    for (const what of plaintextSecrets(text)) {
                        report(`${field} contains a ${what} in plain text: pass it through the command's environment or stdin as a pulumi.secret, and refer to it as "$VAR".`);
                    }
                }
            },
        },
        {
            name: "managed-databases-private",
            description: "Managed databases are not publicly accessible and are encrypted at rest.",
            enforcementLevel: "mandatory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                if (args.type !== "aws:rds/instance:Instance" && args.type !== "aws:rds/cluster:Cluster") return;
                const p = propsOf(args);
                if (p.publiclyAccessible === true) report("publiclyAccessible is true: set it to false; replication reaches the database over the VPC or the mesh.");
                if (p.storageEncrypted !== true && p.storageEncrypted !== UNKNOWN) report("storageEncrypted is not true: set storageEncrypted: true (it cannot be turned on later without a restore).");
            },
        },
        {
            name: "dns-proxied-or-short-ttl",
            description: "While a migration is configured, the platform's Cloudflare records are proxied or have a TTL of at most 300 s, so a flip takes effect quickly.",
            enforcementLevel: "mandatory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                if (args.type !== "cloudflare:index/dnsRecord:DnsRecord" && args.type !== "cloudflare:index/record:Record") return;
                if (stackConfig("peer") === undefined && stackConfig("live") === undefined) return;
                const { proxied, ttl } = propsOf(args);
                if (proxied === UNKNOWN || ttl === UNKNOWN) return;
                if (proxied !== true && !(typeof ttl === "number" && ttl > 0 && ttl <= 300)) {
                    report(`record is neither proxied nor short-lived (ttl ${ttl ?? "default"}): set proxied: true, or ttl: 300 or less, before the cutover.`);
                }
            },
        },
        {
            name: "hosts-tagged-site-role",
            description: "Every host, template and group carries its site and role tags (the inventory and firewalls rely on them).",
            enforcementLevel: "mandatory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                const p = propsOf(args);
                let tags: string[] | Record<string, string>;
                if (args.type === "digitalocean:index/droplet:Droplet") {
                    if (p.tags === UNKNOWN || list(p.tags).includes(UNKNOWN)) return;
                    tags = strings(p.tags);
                } else if (args.type === "aws:ec2/instance:Instance") {
                    if (p.tags === UNKNOWN) return;
                    tags = p.tags ?? {};
                } else if (args.type === "aws:ec2/launchTemplate:LaunchTemplate") {
                    tags = list(p.tagSpecifications).find((s) => s?.resourceType === "instance")?.tags ?? {};
                } else if (args.type === "aws:autoscaling/group:Group") {
                    tags = Object.fromEntries(list(p.tags).map((t) => [t?.key, t?.value]));
                } else {
                    return;
                }
                const missing = missingSiteRoleTags(tags);
                if (missing.length > 0) report(`missing tag${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: tag every host with its site and role.`);
            },
        },
        {
            name: "hosts-behind-cloud-firewall",
            description: "Every droplet is selected by a DigitalOcean firewall; every instance and launch template has a security group.",
            enforcementLevel: "mandatory",
            validateStack: (args: StackValidationArgs, report: ReportViolation) => {
                const firewalls = resourcesOf(args.resources, "digitalocean:index/firewall:Firewall");
                // A firewall whose selectors are not known yet may cover anything: no verdict on droplets then.
                if (firewalls.some(({ p }) => p.tags === UNKNOWN || list(p.tags).includes(UNKNOWN) || p.dropletIds === UNKNOWN)) return;
                const firewallTags = new Set(firewalls.flatMap(({ p }) => strings(p.tags)));
                const firewallIds = new Set(firewalls.flatMap(({ p }) => list(p.dropletIds).filter((x) => x !== UNKNOWN).map(String)));
                // The droplets whose ids a firewall's dropletIds came from: covered even while ids are unknown (a preview).
                const byReference = new Set(firewalls.flatMap(({ r }) => (r.propertyDependencies?.dropletIds ?? []).map((d) => d.urn)));
                for (const { r, p } of resourcesOf(args.resources, "digitalocean:index/droplet:Droplet")) {
                    if (p.tags === UNKNOWN || list(p.tags).includes(UNKNOWN)) continue;
                    if (!strings(p.tags).some((t) => firewallTags.has(t)) && !firewallIds.has(String(p.id)) && !byReference.has(r.urn)) {
                        report(`droplet ${r.name} is selected by no cloud firewall: give it the tag of a firewall (cutover-<site>-<role>).`, r.urn);
                    }
                }
                for (const { r, p } of resourcesOf(args.resources, "aws:ec2/instance:Instance", "aws:ec2/launchTemplate:LaunchTemplate")) {
                    const groups = [p.vpcSecurityGroupIds, p.securityGroups, ...list(p.networkInterfaces).map((n) => n?.securityGroups)];
                    if (groups.includes(UNKNOWN)) continue;
                    if (groups.every((g) => list(g).length === 0)) report(`${r.type.split(":").pop()} ${r.name} has no security group: it would get the VPC's default group.`, r.urn);
                }
            },
        },
        {
            name: "backup-buckets-protected",
            description: "Backup buckets (tag purpose=backup) are encrypted, versioned and not public.",
            enforcementLevel: "mandatory",
            validateStack: (args: StackValidationArgs, report: ReportViolation) => {
                // Each side resource exists in a current and a deprecated "V2" spelling.
                const side = (name: string) => resourcesOf(args.resources, `aws:s3/${name[0].toLowerCase()}${name.slice(1)}:${name}`, `aws:s3/${name[0].toLowerCase()}${name.slice(1)}V2:${name}V2`).map(({ p }) => p);
                const encryption = side("BucketServerSideEncryptionConfiguration");
                const versioning = side("BucketVersioning");
                const blocks = side("BucketPublicAccessBlock");
                for (const { r, p } of resourcesOf(args.resources, ...BUCKET_TYPES)) {
                    if (p.tags?.purpose !== "backup") continue;
                    const names = new Set([p.id, p.bucket].filter((x) => typeof x === "string"));
                    // A side resource whose bucket is not known yet may be this bucket's.
                    const about = (s: Props) => s.bucket === UNKNOWN || names.has(s.bucket);
                    const encrypted = p.serverSideEncryptionConfiguration !== undefined || encryption.some(about);
                    const versioned = p.versioning?.enabled === true || versioning.some((v) => about(v) && [UNKNOWN, "Enabled"].includes(v.versioningConfiguration?.status));
                    const blocked = blocks.some((b) => about(b) && ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"].every((k) => b[k] === true || b[k] === UNKNOWN));
                    const problems = [
                        encrypted ? "" : "no server-side encryption",
                        versioned ? "" : "versioning not enabled",
                        blocked ? "" : "public access not fully blocked",
                        typeof p.acl === "string" && p.acl.startsWith("public") ? `ACL ${p.acl}` : "",
                    ].filter(Boolean);
                    if (problems.length > 0) report(`backup bucket ${r.name}: ${problems.join(", ")}. Backups hold every customer's data: encrypt, version and block public access.`, r.urn);
                }
            },
        },
        {
            name: "stateful-resources-protected",
            description: "Database and cache hosts, data volumes, managed databases and backup or media buckets are protected: neither a routine pulumi up nor a destroy deletes them.",
            enforcementLevel: "mandatory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                const what = statefulKind(args.type, propsOf(args));
                if (what && args.opts.protect !== true) {
                    report(`${what} is not protected: set protect: true (the resource option) so that a replacement or pulumi destroy cannot delete its data; unprotect it deliberately to decommission.`);
                }
            },
        },
        {
            name: "database-not-burstable",
            description: "Database hosts should not run on burstable or shared-CPU sizes (replication catch-up needs sustained CPU).",
            enforcementLevel: "advisory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                const p = propsOf(args);
                let size: unknown;
                let role: unknown;
                if (args.type === "digitalocean:index/droplet:Droplet") {
                    size = p.size;
                    role = strings(p.tags).find((t) => t.startsWith("role:"))?.slice(5);
                } else if (args.type === "aws:ec2/instance:Instance") {
                    size = p.instanceType;
                    role = p.tags?.role;
                } else {
                    return;
                }
                if (role === "db" && typeof size === "string" && BURSTABLE.test(size)) {
                    report(`database host on ${size}: a burstable/shared-CPU size can run out of credit during seeding or catch-up; prefer a dedicated-CPU size.`);
                }
            },
        },
        {
            name: "host-monitoring-on",
            description: "Monitoring comes first: droplets run the DigitalOcean monitoring agent.",
            enforcementLevel: "advisory",
            validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
                if (args.type !== "digitalocean:index/droplet:Droplet") return;
                const { monitoring } = propsOf(args);
                if (monitoring !== true && monitoring !== UNKNOWN) report("monitoring is off: set monitoring: true so alerts exist before the migration starts.");
            },
        },
    ],
});
