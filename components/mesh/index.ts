import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as tls from "@pulumi/tls";
import { MeshPlan } from "../config";
import { Host } from "../types";
import { MeshHost, meshHubs, meshNodeName, meshScript, pkcs1PublicKey, siteHubs } from "./render";

export interface TincMeshArgs {
    site: string;
    hosts: Host[];
    plan: MeshPlan;
    /** The peer site's members, from its `mesh` output (empty until the peer is deployed). */
    peerMembers: pulumi.Input<MeshHost[]>;
    /** Steps each member's step waits for, by host name (its firewall admitting the tinc port). */
    after: Record<string, pulumi.Resource[]>;
}

/**
 * Every host of the site joins one tinc mesh spanning both sites. Each host gets its own
 * RSA key (secret, delivered on stdin to that host only); host files carry public keys.
 * Membership is the union of this site's hosts and the peer's published members. A member
 * holds the host files of the hubs it connects to (a hub holds all), so a host joining or
 * leaving changes its own step and the hubs' (they reload tincd with SIGHUP), no other.
 */
export class TincMesh extends pulumi.ComponentResource {
    /** This site's members, for the `mesh` output (public data only). */
    public readonly members: pulumi.Output<MeshHost[]>;
    /** Every member of both sites. */
    public readonly allMembers: pulumi.Output<MeshHost[]>;
    private readonly stepOf: Record<string, command.remote.Command> = {};
    private readonly hubSteps: command.remote.Command[];

    constructor(name: string, args: TincMeshArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:TincMesh", name, {}, opts);
        const keys = args.hosts.map(
            (h) => new tls.PrivateKey(`${name}-${h.name}`, { algorithm: "RSA", rsaBits: 2048 }, { parent: this, additionalSecretOutputs: ["privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"] }),
        );
        const memberOf = args.hosts.map((h, i) =>
            pulumi.all([h.publicAddress, keys[i].publicKeyPem]).apply(([publicAddress, publicKey]): MeshHost => ({
                node: meshNodeName(h.name),
                host: h.name,
                site: args.site,
                publicAddress,
                port: args.plan.port,
                meshAddress: args.plan.addresses[h.name],
                // Converted once here, not in each of the many host files that carry it.
                publicKey: pkcs1PublicKey(publicKey),
            })),
        );
        const withPeers = (mine: MeshHost[], theirs: MeshHost[] | undefined) => [...mine, ...(theirs ?? []).filter((m) => m.site !== args.site)];
        this.members = pulumi.all(memberOf);
        this.allMembers = pulumi.all([this.members, args.peerMembers]).apply(([mine, theirs]) => withPeers(mine, theirs));

        const hubs = siteHubs(args.hosts.map((h) => meshNodeName(h.name)), args.plan.hubsPerSite);
        const isHub = args.hosts.map((h) => hubs.includes(meshNodeName(h.name)));
        const hubMembers = memberOf.filter((_, i) => isHub[i]);
        args.hosts.forEach((h, i) => {
            // A hub's step reads every member; any other's only itself, the hubs and the peer's
            // members (all it holds files of), so a site's steps do not each wait on every key.
            const known = isHub[i] ? this.allMembers : pulumi.all([pulumi.all([memberOf[i], ...hubMembers]), args.peerMembers]).apply(([mine, theirs]) => withPeers(mine, theirs));
            const script = known.apply((all) => {
                const self = all.find((m) => m.host === h.name)!;
                return meshScript(self, all, meshHubs(all, args.plan.hubsPerSite), args.plan.cidr);
            });
            const step = new command.remote.Command(`${name}-${h.name}`, {
                connection: h.connection,
                create: script,
                // The private key travels on stdin only: never in the script, never in a log.
                stdin: keys[i].privateKeyPem,
            }, { parent: this, dependsOn: args.after[h.name] ?? [] });
            this.stepOf[h.name] = step;
        });
        this.hubSteps = args.hosts.filter((_, i) => isHub[i]).map((h) => this.stepOf[h.name]);
        this.registerOutputs({ members: this.members });
    }

    /** Every member's step, in the hosts' order. */
    get commands(): command.remote.Command[] {
        return Object.values(this.stepOf);
    }

    /**
     * What a step on `host` that talks over the mesh waits for: that host's member step and
     * this site's hubs' (every member connects through them), not every member's.
     */
    reachableFrom(host: string): command.remote.Command[] {
        return [...new Set([this.stepOf[host], ...this.hubSteps])];
    }
}
