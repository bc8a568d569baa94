import * as pulumi from "@pulumi/pulumi";
import * as cloudflare from "@pulumi/cloudflare";
import { ConfigError, DnsPlan } from "../config";
import { RecordSpec, liveRecords, originName, originRecords } from "./records";

/** A site's `dns` output. */
export interface DnsOutput {
    /** This site's origin name. */
    origin: string;
    /** The site the public names point at, when this stack owns them. */
    live?: string;
    names: string[];
}

export interface DnsRecordsArgs {
    site: string;
    plan: DnsPlan;
    /** Edge hosts' public addresses (in host order), or the load balancer's name. */
    edge: { addresses: pulumi.Output<string>[] } | { hostname: pulumi.Output<string> };
    /** Whether the public names go through Cloudflare's proxy. */
    proxied: boolean;
    live?: string;
    /** The peer's site name and `dns` output, when live names may point at it. */
    peer?: pulumi.Output<{ site?: string; dns?: DnsOutput }>;
    /** What the public names wait for: the runbook's switch step. */
    after?: pulumi.Input<pulumi.Resource[]>;
}

/** The site's origin records and, in the stack that owns them, the public names. */
export class DnsRecords extends pulumi.ComponentResource {
    public readonly output: pulumi.Output<DnsOutput>;

    constructor(name: string, args: DnsRecordsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:DnsRecords", name, {}, opts);
        const plan = args.plan;
        const record = (spec: RecordSpec<pulumi.Input<string>>, after?: pulumi.Input<pulumi.Resource[]>) =>
            new cloudflare.DnsRecord(`${name}-${spec.key}`, {
                zoneId: plan.zoneId,
                name: spec.name,
                type: spec.type,
                content: spec.content,
                proxied: spec.proxied,
                ttl: spec.ttl,
                comment: spec.key.startsWith("origin") ? `cutover: origin of site ${args.site}` : "cutover: public name, follows cutover:live",
            }, { parent: this, import: spec.importId, dependsOn: after });

        // Origin: the record count is known from config; the addresses come when hosts exist.
        for (const spec of originRecords<pulumi.Input<string>>(args.site, plan, args.edge)) record(spec);

        // Public names: content is the live site's origin name, checked against the peer.
        let live: pulumi.Output<string> | undefined;
        if (plan.names.length > 0 && args.live) {
            const wanted = args.live;
            live = (args.peer ?? pulumi.output({} as { site?: string; dns?: DnsOutput })).apply((p) => {
                if (wanted === args.site) return wanted;
                if (!p.site) throw new ConfigError([`cutover:live: ${JSON.stringify(wanted)} is not allowed yet: the peer stack is not deployed, so there is no site ${wanted} to point at`]);
                if (p.site !== wanted) throw new ConfigError([`cutover:live: ${JSON.stringify(wanted)} is not allowed: it is neither this site (${args.site}) nor the peer's (${p.site})`]);
                if (p.dns?.origin !== originName(wanted, plan)) {
                    throw new ConfigError([`cutover:live: ${JSON.stringify(wanted)} is not allowed yet: the peer publishes no origin record ${originName(wanted, plan)} (set cutover:dns with the same zone in its stack and deploy it)`]);
                }
                return wanted;
            });
            const checked = live;
            for (const spec of liveRecords(plan, args.live, args.proxied)) record({ ...spec, content: checked.apply(() => spec.content) }, args.after);
        }
        this.output = pulumi.output(live ?? "").apply((l) => ({ origin: originName(args.site, plan), live: l || undefined, names: plan.names }));
        this.registerOutputs({ output: this.output });
    }
}
