import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as digitalocean from "@pulumi/digitalocean";
import { parseCidr, subnet } from "../cidr";
import { Provider } from "../types";

export interface SiteNetworkArgs {
    site: string;
    provider: Provider;
    /** Cloud region; unused for existing hosts. */
    region: string;
    /** The site's private range. */
    cidr: string;
}

/** Subnets per AWS site: two availability zones, so a load balancer can be placed. */
export const AWS_ZONES = 2;

/**
 * The site's private network: a DigitalOcean VPC, or an AWS VPC with public subnets
 * in two zones and a route to the internet. Existing hosts bring their own network.
 */
export class SiteNetwork extends pulumi.ComponentResource {
    /** VPC id (empty for existing hosts). */
    public readonly vpcId: pulumi.Output<string>;
    /** AWS subnet ids, one per zone (empty elsewhere). */
    public readonly subnetIds: pulumi.Output<string>[];

    constructor(name: string, args: SiteNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:SiteNetwork", name, {}, opts);
        const tags = { site: args.site, "managed-by": "cutover" };
        this.subnetIds = [];

        if (args.provider === "digitalocean") {
            const vpc = new digitalocean.Vpc(`${name}-vpc`, {
                name: `${args.site}-vpc`,
                region: args.region,
                ipRange: args.cidr,
                description: `cutover site ${args.site}`,
            }, { parent: this });
            this.vpcId = vpc.id;
        } else if (args.provider === "aws") {
            const vpc = new aws.ec2.Vpc(`${name}-vpc`, {
                cidrBlock: args.cidr,
                enableDnsHostnames: true,
                enableDnsSupport: true,
                tags: { ...tags, Name: `${args.site}-vpc` },
            }, { parent: this });
            const gateway = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: { ...tags, Name: `${args.site}-igw` } }, { parent: this });
            const routes = new aws.ec2.RouteTable(`${name}-public`, {
                vpcId: vpc.id,
                routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: gateway.id }],
                tags: { ...tags, Name: `${args.site}-public` },
            }, { parent: this });
            const zones = aws.getAvailabilityZonesOutput({ state: "available" }, { parent: this });
            const range = parseCidr(args.cidr)!;
            for (let i = 0; i < AWS_ZONES; i++) {
                // Each zone gets a quarter of the site range; the rest stays free for later tiers.
                const sn = new aws.ec2.Subnet(`${name}-public-${i}`, {
                    vpcId: vpc.id,
                    cidrBlock: subnet(range, range.prefix + 2, i),
                    availabilityZone: zones.names[i],
                    mapPublicIpOnLaunch: true,
                    tags: { ...tags, Name: `${args.site}-public-${i}` },
                }, { parent: this });
                new aws.ec2.RouteTableAssociation(`${name}-public-${i}`, { subnetId: sn.id, routeTableId: routes.id }, { parent: this });
                this.subnetIds.push(sn.id);
            }
            this.vpcId = vpc.id;
        } else {
            this.vpcId = pulumi.output("");
        }
        this.registerOutputs({ vpcId: this.vpcId, subnetIds: this.subnetIds });
    }
}
