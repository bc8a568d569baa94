import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../types";
import { Backend, edgeScript } from "./render";

export interface EdgeArgs {
    /** The site's edge hosts. */
    hosts: Host[];
    /** App hosts per site: this site's and, over the mesh, the peer's. */
    sites: pulumi.Input<Record<string, Backend[]>>;
    /** The site served until the runbook routes elsewhere. */
    live: pulumi.Input<string>;
    /** Mesh address per host: where the runbook reaches the admin socket. */
    adminAddresses: Record<string, string>;
    after: pulumi.Resource[];
}

/** HAProxy on each edge host: routes to the live site, holds writes during a cutover. */
export class Edge extends pulumi.ComponentResource {
    public readonly commands: command.remote.Command[];

    constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Edge", name, {}, opts);
        this.commands = args.hosts.map(
            (h) =>
                new command.remote.Command(`${name}-${h.name}`, {
                    connection: h.connection,
                    create: pulumi.all([args.sites, args.live]).apply(([sites, live]) => edgeScript({ host: h.name, bind: ":80", sites, live, adminAddress: args.adminAddresses[h.name] })),
                }, { parent: this, dependsOn: args.after }),
        );
        this.registerOutputs({});
    }
}
