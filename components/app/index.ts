import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { secretStdin } from "../database/ca";
import { Host } from "../types";
import { probeScript } from "./probe";

export interface ProbeAppArgs {
    site: string;
    hosts: Host[];
    /** The site's database: mesh address and port; the probe account's password (secret). */
    db: { address: string; port: number; password: pulumi.Input<string> };
    after: pulumi.Resource[];
}

/** The rehearsal probe app on each app host (`cutover:probe: true`). */
export class ProbeApp extends pulumi.ComponentResource {
    public readonly commands: command.remote.Command[];

    constructor(name: string, args: ProbeAppArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:ProbeApp", name, {}, opts);
        const stdin = secretStdin({ "probe-password": args.db.password });
        this.commands = args.hosts.map((h) =>
            new command.remote.Command(`${name}-${h.name}`, {
                connection: h.connection,
                create: probeScript({ site: args.site, host: h.name, db: { address: args.db.address, port: args.db.port } }),
                stdin,
            }, { parent: this, dependsOn: args.after }));
        this.registerOutputs({});
    }
}
