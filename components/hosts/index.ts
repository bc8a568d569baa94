import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as cloudflare from "@pulumi/cloudflare";
import * as digitalocean from "@pulumi/digitalocean";
import * as command from "@pulumi/command";
import * as tls from "@pulumi/tls";
import { APP_PORT } from "../firewall/render";
import { ExistingHostSpec, PoolSpec } from "../config";
import { dataDirectory, dataVolumeScript, digitalOceanVolumeDevice } from "../volume/render";
import { DbEngine, Edge, Host, ROLES, Role, SshConnection } from "../types";

/** SSH retries: a fresh droplet or instance takes a minute or two before sshd answers (pulumi/pulumi-command#1238). */
export const SSH_DIAL_ERROR_LIMIT = 60;
export const SSH_PER_DIAL_TIMEOUT = 10;

interface Common {
    site: string;
    sshUser: string;
    /** Cloud-init user data for a created host of a role. */
    userData: (hostname: string, role: Role) => string;
}

export type AppPoolArgs = Common &
    (
        | {
              provider: "digitalocean";
              region: string;
              image: string;
              /** Decides the directory the data volume is mounted at. */
              dbEngine: DbEngine;
              pools: Partial<Record<Role, PoolSpec>>;
              vpcId: pulumi.Input<string>;
              /** Firewall tag per role (the cloud firewall selects droplets by it). */
              roleTags: Partial<Record<Role, pulumi.Input<string>>>;
          }
        | {
              provider: "aws";
              /** AMI id; empty: the newest official Debian 12 image when a host is created (kept after). */
              image: string;
              pools: Partial<Record<Role, PoolSpec>>;
              subnetIds: pulumi.Input<string>[];
              vpcId: pulumi.Input<string>;
              securityGroupIds: Partial<Record<Role, pulumi.Input<string>>>;
              loadBalancerGroupId?: pulumi.Input<string>;
              /** The Cloudflare zone of the site's names: the load balancer's certificate (apex and one label below it) is validated there. */
              zone?: { zoneId: string; zone: string };
              /** The mesh group every instance joins, when the site has a mesh. */
              meshGroupId?: pulumi.Input<string>;
          }
        | {
              provider: "existing";
              hosts: ExistingHostSpec[];
              /** Secret private key the hosts accept. */
              privateKey: pulumi.Output<string>;
              bastion?: { host: string; user: string; port: number };
          }
    );

/** Hosts whose data must outlive them: never replaced by a routine `pulumi up`, protected from deletion. */
export function isStateful(role: Role): boolean {
    return role === "db" || role === "cache";
}

/** Root disk of an AWS host (GB) when the pool does not say: room for a database on the stateful roles. */
export const DEFAULT_STATEFUL_ROOT_GB = 100;
/** Data volume of a DigitalOcean db/cache droplet (GB) when the pool does not say. */
export const DEFAULT_DATA_GB = 100;

/** Stable host names: adding a host never renames the others. */
export function hostName(site: string, role: Role, index: number): string {
    return `${site}-${role}-${index + 1}`;
}

function connection(host: pulumi.Input<string>, user: string, privateKey: pulumi.Output<string>, port = 22): SshConnection {
    return { host, port, user, privateKey: pulumi.secret(privateKey), dialErrorLimit: SSH_DIAL_ERROR_LIMIT, perDialTimeout: SSH_PER_DIAL_TIMEOUT };
}

/**
 * The hosts of one site. Whatever the provider, the result is the same list of
 * `Host` and one `Edge`; nothing above this component branches on the provider.
 */
export class AppPool extends pulumi.ComponentResource {
    public readonly hosts: Host[];
    public readonly edge: pulumi.Output<Edge>;
    /** DigitalOcean: the tag on every droplet of the site (the mesh firewall selects by it). */
    public siteTag?: pulumi.Output<string>;
    /** AWS: instance ids by host name (for per-instance alarms). */
    public readonly instanceIds: Record<string, pulumi.Output<string>> = {};
    /** The public half of the program's deploy key (created hosts only): the peer authorizes it for its runbook. */
    public deployPublicKey?: pulumi.Output<string>;
    /** Steps that mount the stateful hosts' data volumes: the database and cache steps come after them. */
    public readonly dataSteps: command.remote.Command[] = [];

    constructor(name: string, args: AppPoolArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:AppPool", name, {}, opts);
        let built: { hosts: Host[]; edge: pulumi.Output<Edge> };
        if (args.provider === "digitalocean") built = this.droplets(name, args);
        else if (args.provider === "aws") built = this.instances(name, args);
        else built = this.existing(args);
        this.hosts = built.hosts;
        this.edge = built.edge;
        this.registerOutputs({ hosts: this.hosts.map((h) => h.name), edge: this.edge });
    }

    /** A key pair the program owns for its own SSH steps; the private half is a secret. */
    private deployKey(name: string): tls.PrivateKey {
        const key = new tls.PrivateKey(`${name}-deploy-key`, { algorithm: "ED25519" }, { parent: this, additionalSecretOutputs: ["privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"] });
        this.deployPublicKey = key.publicKeyOpenssh;
        return key;
    }

    private droplets(name: string, args: Extract<AppPoolArgs, { provider: "digitalocean" }>) {
        const key = this.deployKey(name);
        const doKey = new digitalocean.SshKey(`${name}-deploy-key`, { name: `cutover-${args.site}-deploy`, publicKey: key.publicKeyOpenssh }, { parent: this });
        const siteTag = new digitalocean.Tag(`${name}-site`, { name: `site:${args.site}` }, { parent: this });
        this.siteTag = siteTag.name;
        const hosts: Host[] = [];
        for (const role of ROLES) {
            const pool = args.pools[role];
            if (!pool) continue;
            const roleTag = new digitalocean.Tag(`${name}-role-${role}`, { name: `role:${role}` }, { parent: this });
            for (let i = 0; i < pool.count; i++) {
                const hn = hostName(args.site, role, i);
                const stateful = isStateful(role);
                const droplet = new digitalocean.Droplet(`${name}-${role}-${i + 1}`, {
                    name: hn,
                    region: args.region,
                    size: pool.size,
                    image: args.image,
                    vpcUuid: args.vpcId,
                    sshKeys: [doKey.fingerprint],
                    tags: [siteTag.name, roleTag.name, args.roleTags[role]!],
                    userData: args.userData(hn, role),
                    monitoring: true,
                    ipv6: true,
                    // Rule changes after first boot go through the firewall command; a
                    // changed first-boot script must not replace a running host, nor a new
                    // image one that holds data (protect makes deleting it an explicit act).
                }, { parent: this, ignoreChanges: stateful ? ["userData", "image"] : ["userData"], protect: stateful });
                const host: Host = {
                    name: hn,
                    site: args.site,
                    role,
                    publicAddress: droplet.ipv4Address,
                    privateAddress: droplet.ipv4AddressPrivate,
                    connection: connection(droplet.ipv4Address, args.sshUser, key.privateKeyOpenssh),
                };
                hosts.push(host);
                if (stateful) this.dataVolume(name, args, host, pool, droplet);
            }
        }
        return { hosts, edge: edgeOf(hosts) };
    }

    /** A droplet's disk dies with it: a db/cache droplet keeps its data on a protected Volume. */
    private dataVolume(name: string, args: Extract<AppPoolArgs, { provider: "digitalocean" }>, host: Host, pool: PoolSpec, droplet: digitalocean.Droplet): void {
        const volumeName = `${host.name}-data`;
        const volume = new digitalocean.Volume(`${name}-${host.name}-data`, {
            name: volumeName,
            region: args.region,
            size: pool.dataGb ?? DEFAULT_DATA_GB,
            initialFilesystemType: "ext4",
            description: `cutover ${args.site}: data of ${host.name}`,
        }, { parent: this, protect: true });
        const attachment = new digitalocean.VolumeAttachment(`${name}-${host.name}-data`, {
            dropletId: droplet.id.apply(Number),
            volumeId: volume.id,
        }, { parent: this });
        this.dataSteps.push(new command.remote.Command(`${name}-data-${host.name}`, {
            connection: host.connection,
            create: dataVolumeScript({ host: host.name, device: digitalOceanVolumeDevice(volumeName), mountPoint: dataDirectory(host.role, args.dbEngine) }),
        }, { parent: this, dependsOn: [attachment] }));
    }

    private instances(name: string, args: Extract<AppPoolArgs, { provider: "aws" }>) {
        const key = this.deployKey(name);
        const keyPair = new aws.ec2.KeyPair(`${name}-deploy-key`, { keyName: `cutover-${args.site}-deploy`, publicKey: key.publicKeyOpenssh }, { parent: this });
        const pinned = args.image !== "";
        const ami = pinned
            ? pulumi.output(args.image)
            : aws.ec2.getAmiOutput({
                  mostRecent: true,
                  owners: ["136693071363"], // Debian's official AWS account
                  filters: [{ name: "name", values: ["debian-12-amd64-*"] }, { name: "architecture", values: ["x86_64"] }],
              }, { parent: this }).id;
        const hosts: Host[] = [];
        let lbDnsName: pulumi.Output<string> | undefined;
        for (const role of ROLES) {
            const pool = args.pools[role];
            if (!pool) continue;
            const tags = { site: args.site, role, "managed-by": "cutover" };
            if (pool.autoscaling) {
                lbDnsName = this.autoScaledTier(name, args, role, pool, ami, keyPair.keyName);
                continue;
            }
            const stateful = isStateful(role);
            for (let i = 0; i < pool.count; i++) {
                const hn = hostName(args.site, role, i);
                const instance = new aws.ec2.Instance(`${name}-${role}-${i + 1}`, {
                    ami,
                    instanceType: pool.size,
                    subnetId: args.subnetIds[i % args.subnetIds.length],
                    vpcSecurityGroupIds: [args.securityGroupIds[role]!, ...(args.meshGroupId ? [args.meshGroupId] : [])],
                    keyName: keyPair.keyName,
                    associatePublicIpAddress: true,
                    userData: args.userData(hn, role),
                    metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" },
                    // A stateful host's data is on its root disk: the disk outlives the instance.
                    rootBlockDevice: { encrypted: true, volumeType: "gp3", volumeSize: pool.rootGb ?? (stateful ? DEFAULT_STATEFUL_ROOT_GB : undefined), deleteOnTermination: !stateful },
                    tags: { ...tags, Name: hn },
                    volumeTags: { ...tags, Name: hn },
                    // `ami` forces a replacement: a looked-up image is taken once, at creation, and
                    // a stateful host never follows an image change (a pinned one moves the others).
                }, { parent: this, ignoreChanges: stateful || !pinned ? ["userData", "ami"] : ["userData"], protect: stateful });
                if (!pinned) this.sayWhenNewerImage(hn, instance.ami, ami, instance);
                this.instanceIds[hn] = instance.id;
                hosts.push({
                    name: hn,
                    site: args.site,
                    role,
                    publicAddress: instance.publicIp,
                    privateAddress: instance.privateIp,
                    connection: connection(instance.publicIp, args.sshUser, key.privateKeyOpenssh),
                });
            }
        }
        const edge = lbDnsName ? lbDnsName.apply((hostname): Edge => ({ kind: "hostname", addresses: [], hostname })) : edgeOf(hosts);
        return { hosts, edge };
    }

    /** The plan says when a newer Debian image exists than the one an instance keeps. */
    private sayWhenNewerImage(host: string, kept: pulumi.Output<string>, newest: pulumi.Output<string>, instance: aws.ec2.Instance): void {
        pulumi.all([kept, newest]).apply(([k, n]) => {
            if (k && n && k !== n) pulumi.log.info(`${host} keeps its image ${k}; the newest Debian 12 image is ${n}: set cutover:image to move the stateless hosts to it (db and cache hosts keep theirs)`, instance);
        });
    }

    /**
     * A stateless web tier: launch template + auto-scaling group behind an application
     * load balancer. Its hosts come and go, so they are not in the host list; the load
     * balancer is the site's edge.
     */
    private autoScaledTier(
        name: string,
        args: Extract<AppPoolArgs, { provider: "aws" }>,
        role: Role,
        pool: PoolSpec,
        ami: pulumi.Input<string>,
        keyName: pulumi.Input<string>,
    ): pulumi.Output<string> {
        const tags = { site: args.site, role, "managed-by": "cutover" };
        const template = new aws.ec2.LaunchTemplate(`${name}-${role}`, {
            namePrefix: `${args.site}-${role}-`,
            imageId: ami,
            instanceType: pool.size,
            keyName,
            vpcSecurityGroupIds: [args.securityGroupIds[role]!, ...(args.meshGroupId ? [args.meshGroupId] : [])],
            userData: Buffer.from(args.userData(`${args.site}-${role}`, role)).toString("base64"),
            metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" },
            blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { encrypted: "true", volumeType: "gp3", ...(pool.rootGb ? { volumeSize: pool.rootGb } : {}) } }],
            tagSpecifications: [{ resourceType: "instance", tags }, { resourceType: "volume", tags }],
            tags,
        }, { parent: this });
        const lb = new aws.lb.LoadBalancer(`${name}-${role}`, {
            name: `${args.site}-${role}`,
            loadBalancerType: "application",
            subnets: args.subnetIds,
            securityGroups: [args.loadBalancerGroupId!],
            dropInvalidHeaderFields: true,
            tags,
        }, { parent: this });
        const targets = new aws.lb.TargetGroup(`${name}-${role}`, {
            name: `${args.site}-${role}`,
            port: APP_PORT,
            protocol: "HTTP",
            vpcId: args.vpcId,
            healthCheck: { path: "/health", matcher: "200" },
            tags,
        }, { parent: this });
        new aws.lb.Listener(`${name}-${role}-http`, {
            loadBalancerArn: lb.arn,
            port: 80,
            protocol: "HTTP",
            defaultActions: [{ type: "forward", targetGroupArn: targets.arn }],
        }, { parent: this });
        // HTTPS: what Cloudflare's Full (strict) mode connects to, with the public name as SNI.
        // The apex and its wildcard share one DNS validation record.
        const zone = args.zone!;
        const certificate = new aws.acm.Certificate(`${name}-${role}`, {
            domainName: zone.zone,
            subjectAlternativeNames: [`*.${zone.zone}`],
            validationMethod: "DNS",
            tags,
        }, { parent: this });
        const option = certificate.domainValidationOptions.apply((o) => o[0]);
        const validationRecord = new cloudflare.DnsRecord(`${name}-${role}-acm`, {
            zoneId: zone.zoneId,
            name: option.apply((o) => o.resourceRecordName.replace(/\.$/, "")),
            type: option.apply((o) => o.resourceRecordType),
            content: option.apply((o) => o.resourceRecordValue.replace(/\.$/, "")),
            proxied: false,
            ttl: 300,
            comment: `cutover: ACM validation of the ${args.site} load balancer's certificate`,
        }, { parent: this });
        const validated = new aws.acm.CertificateValidation(`${name}-${role}`, {
            certificateArn: certificate.arn,
            validationRecordFqdns: [validationRecord.name],
        }, { parent: this });
        new aws.lb.Listener(`${name}-${role}-https`, {
            loadBalancerArn: lb.arn,
            port: 443,
            protocol: "HTTPS",
            sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
            certificateArn: validated.certificateArn,
            defaultActions: [{ type: "forward", targetGroupArn: targets.arn }],
        }, { parent: this });
        new aws.autoscaling.Group(`${name}-${role}`, {
            name: `${args.site}-${role}`,
            minSize: pool.autoscaling!.min,
            maxSize: pool.autoscaling!.max,
            desiredCapacity: Math.min(Math.max(pool.count, pool.autoscaling!.min), pool.autoscaling!.max),
            vpcZoneIdentifiers: args.subnetIds,
            targetGroupArns: [targets.arn],
            healthCheckType: "ELB",
            healthCheckGracePeriod: 120,
            // The template's version number, not "$Latest": a changed template then changes the
            // group, which starts the instance refresh (with "$Latest" nothing rolls the instances).
            launchTemplate: { id: template.id, version: template.latestVersion.apply(String) },
            instanceRefresh: { strategy: "Rolling", preferences: { minHealthyPercentage: 90 } },
            tags: Object.entries({ ...tags, Name: `${args.site}-${role}` }).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
        }, { parent: this });
        return lb.dnsName;
    }

    private existing(args: Extract<AppPoolArgs, { provider: "existing" }>) {
        const proxy = args.bastion;
        const hosts: Host[] = args.hosts.map((h) => {
            // Through a bastion the host is reached on its private address.
            const conn = connection(proxy ? h.privateAddress : h.publicAddress, h.user, args.privateKey, h.port);
            if (proxy) conn.proxy = { ...proxy, privateKey: conn.privateKey };
            return {
                name: h.name,
                site: args.site,
                role: h.role,
                publicAddress: pulumi.output(h.publicAddress),
                privateAddress: pulumi.output(h.privateAddress),
                connection: conn,
            };
        });
        return { hosts, edge: edgeOf(hosts) };
    }
}

/** Edge hosts' public addresses, for A records. */
function edgeOf(hosts: Host[]): pulumi.Output<Edge> {
    const edges = hosts.filter((h) => h.role === "edge");
    return pulumi.all(edges.map((h) => h.publicAddress)).apply((addresses): Edge => ({ kind: "addresses", addresses, hostname: "" }));
}
