import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as digitalocean from "@pulumi/digitalocean";
import { parseCidr } from "../cidr";
import { Host, Provider, Role } from "../types";
import { InboundRule, hostFirewallScript } from "./render";

export interface CloudFirewallArgs {
    site: string;
    provider: Provider;
    /** Inbound rules per role present in the site. */
    rules: Partial<Record<Role, InboundRule[]>>;
    /** AWS: the VPC the security groups belong to. */
    vpcId: pulumi.Input<string>;
    /** AWS: also create the load balancer's group (edge rules) for an auto-scaled web tier. */
    loadBalancer: boolean;
    /** AWS: also create the (rule-less) mesh group every instance joins; MeshFirewall fills it. */
    mesh: boolean;
}

function sourcesByFamily(sources: string[]): { v4: string[]; v6: string[] } {
    return {
        v4: sources.filter((s) => parseCidr(s)?.version === 4),
        v6: sources.filter((s) => parseCidr(s)?.version === 6),
    };
}

/**
 * The cloud layer: default deny inbound, then the role's rules. DigitalOcean firewalls
 * select droplets by tag, not droplet id, so replacing a droplet keeps it covered
 * (pulumi/pulumi-digitalocean#447, #256). Existing hosts have no cloud layer.
 */
export class CloudFirewall extends pulumi.ComponentResource {
    /** DigitalOcean: the tag name per role that puts a droplet under its firewall. */
    public readonly roleTags: Partial<Record<Role, pulumi.Output<string>>> = {};
    /** AWS: the security group per role. */
    public readonly securityGroupIds: Partial<Record<Role, pulumi.Output<string>>> = {};
    /** AWS: the load balancer's security group, when there is one. */
    public readonly loadBalancerGroupId?: pulumi.Output<string>;
    /** AWS: the mesh security group, when the site has a mesh. */
    public readonly meshGroupId?: pulumi.Output<string>;

    constructor(name: string, args: CloudFirewallArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:CloudFirewall", name, {}, opts);
        const roles = Object.keys(args.rules) as Role[];

        if (args.provider === "digitalocean") {
            for (const role of roles) {
                const tag = new digitalocean.Tag(`${name}-${role}`, { name: `cutover-${args.site}-${role}` }, { parent: this });
                new digitalocean.Firewall(`${name}-${role}`, {
                    name: `${args.site}-${role}`,
                    tags: [tag.name],
                    inboundRules: args.rules[role]!.map((r) => ({ protocol: r.protocol, portRange: String(r.port), sourceAddresses: r.sources })),
                    // A DigitalOcean firewall with no outbound rules blocks all egress.
                    outboundRules: ["tcp", "udp", "icmp"].map((protocol) => ({
                        protocol,
                        portRange: protocol === "icmp" ? undefined : "1-65535",
                        destinationAddresses: ["0.0.0.0/0", "::/0"],
                    })),
                }, { parent: this });
                this.roleTags[role] = tag.name;
            }
        } else if (args.provider === "aws") {
            const group = (part: string, rules: InboundRule[]) =>
                new aws.ec2.SecurityGroup(`${name}-${part}`, {
                    name: `${args.site}-${part}`,
                    description: `cutover ${args.site} ${part}: default deny inbound`,
                    vpcId: args.vpcId,
                    ingress: rules.map((r) => {
                        const { v4, v6 } = sourcesByFamily(r.sources);
                        return { protocol: r.protocol, fromPort: r.port, toPort: r.port, cidrBlocks: v4, ipv6CidrBlocks: v6, description: r.purpose };
                    }),
                    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"], description: "all outbound" }],
                    tags: { site: args.site, role: part, "managed-by": "cutover" },
                }, { parent: this });
            for (const role of roles) this.securityGroupIds[role] = group(role, args.rules[role]!).id;
            if (args.loadBalancer) {
                const edgeRules = (args.rules.edge ?? []).filter((r) => r.port === 80 || r.port === 443);
                this.loadBalancerGroupId = group("lb", edgeRules).id;
            }
            if (args.mesh) {
                // Its rules are separate resources (they name hosts that do not exist yet);
                // AWS forbids mixing inline and separate rules in one group, hence a group of its own.
                this.meshGroupId = new aws.ec2.SecurityGroup(`${name}-mesh`, {
                    name: `${args.site}-mesh`,
                    description: `cutover ${args.site} mesh: the tinc port from mesh members only`,
                    vpcId: args.vpcId,
                    tags: { site: args.site, role: "mesh", "managed-by": "cutover" },
                }, { parent: this }).id;
            }
        }
        this.registerOutputs({ roleTags: this.roleTags, securityGroupIds: this.securityGroupIds });
    }
}

export interface HostFirewallArgs {
    hosts: Host[];
    /** Inbound rules per role. */
    rules: Partial<Record<Role, InboundRule[]>>;
    /** Rules for every host that depend on other hosts (the mesh port from its members). */
    extraRules: pulumi.Input<InboundRule[]>;
    /** Rules of one role that depend on other hosts (the edges' admin socket from the database hosts). */
    roleRules?: Partial<Record<Role, pulumi.Input<InboundRule[]>>>;
    /** Rules of single hosts by name (what an adopted host's inventory saw serving). */
    hostRules?: Record<string, pulumi.Input<InboundRule[]>>;
    /** Steps each host's firewall step waits for, by host name (its inventory). */
    after?: Record<string, pulumi.Resource[]>;
}

/**
 * The host layer: UFW and key-only sshd on every host, whoever created it. Created
 * hosts already got the same script at first boot; this keeps them in step when the
 * rules change, and is the only delivery for existing hosts.
 */
export class HostFirewall extends pulumi.ComponentResource {
    /** Each host's step, by host name. */
    public readonly stepOf: Record<string, command.remote.Command> = {};

    constructor(name: string, args: HostFirewallArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:HostFirewall", name, {}, opts);
        for (const host of args.hosts) {
            const script = pulumi.all([args.extraRules, args.roleRules?.[host.role] ?? [], args.hostRules?.[host.name] ?? []]).apply(([extra, own, ofHost]) =>
                hostFirewallScript(host.name, [...(args.rules[host.role] ?? []), ...own, ...extra, ...ofHost]));
            const step = new command.remote.Command(`${name}-${host.name}`, {
                connection: host.connection,
                create: script,
            }, { parent: this, dependsOn: args.after?.[host.name] ?? [] });
            this.stepOf[host.name] = step;
        }
        this.registerOutputs({});
    }

    /** Every host's step, in the hosts' order. */
    get commands(): command.remote.Command[] {
        return Object.values(this.stepOf);
    }
}

export interface MeshFirewallArgs {
    site: string;
    provider: Provider;
    /** The tinc port rules (sources: every member's public address). */
    rules: pulumi.Input<InboundRule[]>;
    /** DigitalOcean: the tag every droplet of the site carries. */
    siteTag?: pulumi.Input<string>;
    /** AWS: the mesh security group every instance is in. */
    meshGroupId?: pulumi.Input<string>;
}

/** The cloud layer for the mesh port, created once the members' addresses are known. */
export class MeshFirewall extends pulumi.ComponentResource {
    constructor(name: string, args: MeshFirewallArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:MeshFirewall", name, {}, opts);
        const rules = pulumi.output(args.rules);
        if (args.provider === "digitalocean" && args.siteTag) {
            new digitalocean.Firewall(`${name}`, {
                name: `${args.site}-mesh`,
                tags: [args.siteTag],
                inboundRules: rules.apply((rs) => rs.map((r) => ({ protocol: r.protocol, portRange: String(r.port), sourceAddresses: r.sources }))),
            }, { parent: this });
        } else if (args.provider === "aws" && args.meshGroupId) {
            for (const protocol of ["tcp", "udp"] as const) {
                const rule = rules.apply((rs) => rs.find((r) => r.protocol === protocol));
                new aws.ec2.SecurityGroupRule(`${name}-${protocol}`, {
                    type: "ingress",
                    securityGroupId: args.meshGroupId,
                    protocol,
                    fromPort: rule.apply((r) => r?.port ?? 655),
                    toPort: rule.apply((r) => r?.port ?? 655),
                    cidrBlocks: rule.apply((r) => r?.sources ?? []),
                    description: "tinc from mesh members",
                }, { parent: this });
            }
        }
        this.registerOutputs({});
    }
}
