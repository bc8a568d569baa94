import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { secretStdin } from "../database/ca";
import { DbEngine, Host } from "../types";
import { probeScript } from "./probe";

export interface ProbeAppArgs {
    site: string;
    hosts: Host[];
    /** The site's database: mesh address, port, engine; the probe account's password (MySQL/MariaDB, secret) or client certificate (PostgreSQL, key secret). */
    db: { address: string; port: number; engine: DbEngine; password?: pulumi.Input<string>; tls?: { caCert: pulumi.Input<string>; clientCert: pulumi.Input<string>; clientKey: pulumi.Input<string> } };
    after: pulumi.Resource[];
}

/** The rehearsal probe app on each app host (`cutover:probe: true`). */
export class ProbeApp extends pulumi.ComponentResource {
    public readonly commands: command.remote.Command[];

    constructor(name: string, args: ProbeAppArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:ProbeApp", name, {}, opts);
        const db = args.db;
        const stdin = db.tls ? secretStdin({ "probe-key": db.tls.clientKey }) : secretStdin({ "probe-password": db.password ?? "" });
        const tls: pulumi.Output<{ caCert: string; clientCert: string } | undefined> = db.tls
            ? pulumi.all([db.tls.caCert, db.tls.clientCert]).apply(([caCert, clientCert]) => ({ caCert, clientCert }))
            : pulumi.output(undefined);
        this.commands = args.hosts.map((h) =>
            new command.remote.Command(`${name}-${h.name}`, {
                connection: h.connection,
                create: tls.apply((t) => probeScript({ site: args.site, host: h.name, db: { address: db.address, port: db.port, engine: db.engine } }, t)),
                stdin,
            }, { parent: this, dependsOn: args.after }));
        this.registerOutputs({});
    }
}
