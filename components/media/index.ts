// The media sync step: rclone on one host of this stack, from the old object store (or
// disk over SFTP) to the new one: the stack's own media bucket by default on AWS.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { secretStdin } from "../database/ca";
import { PrivateBucket } from "../storage";
import { Host } from "../types";
import { MediaPlan, MediaRemote, describeRemote, mediaSyncScript } from "./render";

export { MediaPlan, MediaRemote } from "./render";

/** Keys of one side: S3 keys or an SFTP private key (secrets). */
export type MediaCredentials = { accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string> } | { privateKey: pulumi.Input<string> };

export interface MediaSyncArgs {
    site: string;
    host: Host;
    /** The plan; without a target the stack's own bucket (region) is the target. */
    plan: Omit<MediaPlan, "target"> & { target?: MediaRemote };
    region: string;
    credentials: { source?: MediaCredentials; target?: MediaCredentials };
    after: pulumi.Resource[];
}

function sections(side: "source" | "target", c: MediaCredentials | undefined): Record<string, pulumi.Input<string>> {
    if (!c) return {};
    return "privateKey" in c ? { [`${side}-private-key`]: c.privateKey } : { [`${side}-access-key-id`]: c.accessKeyId, [`${side}-secret-access-key`]: c.secretAccessKey };
}

export class MediaSync extends pulumi.ComponentResource {
    public readonly step: command.remote.Command;
    /** Where the media now is. */
    public readonly target: pulumi.Output<string>;

    constructor(name: string, args: MediaSyncArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:MediaSync", name, {}, opts);
        let target: pulumi.Output<MediaRemote>;
        let targetCredentials = args.credentials.target;
        if (args.plan.target) {
            target = pulumi.output(args.plan.target);
        } else {
            const store = new PrivateBucket(`${name}-bucket`, { site: args.site, purpose: "media", access: "read-write" }, { parent: this });
            target = store.bucket.apply((bucket): MediaRemote => ({ type: "s3", provider: "AWS", region: args.region, bucket, path: "" }));
            targetCredentials = { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey };
        }
        this.step = new command.remote.Command(`${name}-${args.host.name}`, {
            connection: args.host.connection,
            create: target.apply((t) => mediaSyncScript(args.host.name, { ...args.plan, target: t })),
            stdin: secretStdin({ ...sections("source", args.credentials.source), ...sections("target", targetCredentials) }),
        }, { parent: this, dependsOn: args.after });
        this.target = target.apply(describeRemote);
        this.registerOutputs({ target: this.target });
    }
}
