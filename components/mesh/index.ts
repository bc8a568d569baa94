import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as tls from "@pulumi/tls";
import { MeshPlan } from "../config";
import { Host } from "../types";
import { MeshHost, meshHubs, meshNodeName, meshScript } from "./render";

export interface TincMeshArgs {
    site: string;
    hosts: Host[];
    plan: MeshPlan;
    /** The peer site's members, from its `mesh` output (empty until the peer is deployed). */
    peerMembers: pulumi.Input<MeshHost[]>;
    /** Steps that must be done first on the hosts (the firewall admitting the tinc port). */
    after: pulumi.Resource[];
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
    public readonly commands: command.remote.Command[] = [];

    constructor(name: string, args: TincMeshArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:TincMesh", name, {}, opts);
        const keys = args.hosts.map(
            (h) => new tls.PrivateKey(`${name}-${h.name}`, { algorithm: "RSA", rsaBits: 2048 }, { parent: this, additionalSecretOutputs: ["privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"] }),
        );
        this.members = pulumi.all(
            args.hosts.map((h, i) =>
                pulumi.all([h.publicAddress, keys[i].publicKeyPem]).apply(([publicAddress, publicKey]): MeshHost => ({
                    node: meshNodeName(h.name),
                    host: h.name,
                    site: args.site,
                    publicAddress,
                    port: args.plan.port,
                    meshAddress: args.plan.addresses[h.name],
                    publicKey,
                })),
            ),
        );
        this.allMembers = pulumi.all([this.members, args.peerMembers]).apply(([mine, theirs]) => [...mine, ...(theirs ?? []).filter((m) => m.site !== args.site)]);

        args.hosts.forEach((h, i) => {
            const script = this.allMembers.apply((all) => {
                const self = all.find((m) => m.host === h.name)!;
                return meshScript(self, all, meshHubs(all, args.plan.hubsPerSite), args.plan.cidr);
            });
            this.commands.push(
                new command.remote.Command(`${name}-${h.name}`, {
                    connection: h.connection,
                    create: script,
                    // The private key travels on stdin only: never in the script, never in a log.
                    stdin: keys[i].privateKeyPem,
                }, { parent: this, dependsOn: args.after }),
            );
        });
        this.registerOutputs({ members: this.members });
    }
}
