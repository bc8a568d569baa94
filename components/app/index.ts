import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../types";
import { probeScript } from "./probe";

/** The rehearsal probe app on each app host (`cutover:probe: true`). */
export class ProbeApp extends pulumi.ComponentResource {
    public readonly commands: command.remote.Command[];

    constructor(name: string, args: { site: string; hosts: Host[]; after: pulumi.Resource[] }, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:ProbeApp", name, {}, opts);
        this.commands = args.hosts.map((h) => new command.remote.Command(`${name}-${h.name}`, { connection: h.connection, create: probeScript(args.site, h.name) }, { parent: this, dependsOn: args.after }));
        this.registerOutputs({});
    }
}
