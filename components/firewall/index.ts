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
        }
        this.registerOutputs({ roleTags: this.roleTags, securityGroupIds: this.securityGroupIds });
    }
}

export interface HostFirewallArgs {
    hosts: Host[];
    /** Inbound rules per role. */
    rules: Partial<Record<Role, InboundRule[]>>;
}

/**
 * The host layer: UFW and key-only sshd on every host, whoever created it. Created
 * hosts already got the same script at first boot; this keeps them in step when the
 * rules change, and is the only delivery for existing hosts.
 */
export class HostFirewall extends pulumi.ComponentResource {
    public readonly commands: command.remote.Command[] = [];

    constructor(name: string, args: HostFirewallArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:HostFirewall", name, {}, opts);
        for (const host of args.hosts) {
            const script = hostFirewallScript(host.name, args.rules[host.role] ?? []);
            this.commands.push(new command.remote.Command(`${name}-${host.name}`, {
                connection: host.connection,
                create: script,
            }, { parent: this }));
        }
        this.registerOutputs({});
    }
}
