// The site's encrypted off-site backups: the bucket (in an AWS region of its own choosing,
// whatever the site's provider) and the job on the db host.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { secretStdin } from "../database/ca";
import { PrivateBucket } from "../storage";
import { DbEngine, Host } from "../types";
import { backupScript } from "./render";

export interface BackupSettings {
    region: string;
    schedule: string;
    keepDays: number;
}

export interface BackupsArgs {
    site: string;
    engine: DbEngine;
    host: Host;
    settings: BackupSettings;
    after: pulumi.Resource[];
}

/** What a restore needs from anywhere: where the backups are and the passphrase (secret). */
export interface BackupsOutput {
    bucket: pulumi.Output<string>;
    region: string;
    host: string;
    schedule: string;
    keepDays: number;
    /** Secret. */
    passphrase: pulumi.Output<string>;
}

export class Backups extends pulumi.ComponentResource {
    public readonly output: BackupsOutput;
    public readonly step: command.remote.Command;

    constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Backups", name, {}, opts);
        const provider = new aws.Provider(`${name}-aws`, { region: args.settings.region as aws.Region }, { parent: this });
        const store = new PrivateBucket(`${name}-bucket`, { site: args.site, purpose: "backup", expireDays: args.settings.keepDays, access: "no-delete" }, { parent: this, providers: [provider] });
        const passphrase = new random.RandomPassword(`${name}-passphrase`, { length: 48, special: false }, { parent: this }).result;
        const s = args.settings;
        const script = store.bucket.apply((bucket) => backupScript(args.host.name, {
            engine: args.engine,
            schedule: s.schedule,
            target: { type: "s3", provider: "AWS", region: s.region, bucket, path: "" },
        }));
        this.step = new command.remote.Command(`${name}-${args.host.name}`, {
            connection: args.host.connection,
            create: script,
            stdin: secretStdin({ "backup-passphrase": passphrase, "target-access-key-id": store.accessKeyId, "target-secret-access-key": store.secretAccessKey }),
        }, { parent: this, dependsOn: args.after });
        // Only the passphrase is secret: where the backups are stays readable in the outputs.
        this.output = { bucket: store.bucket, region: s.region, host: args.host.name, schedule: s.schedule, keepDays: s.keepDays, passphrase: pulumi.secret(passphrase) };
        this.registerOutputs({});
    }
}
